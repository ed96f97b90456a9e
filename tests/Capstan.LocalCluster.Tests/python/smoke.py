"""The official Python client against a cluster: create, list, patch, watch, scale and delete.

Usage: smoke.py KUBECONFIG NAMESPACE. Prints one JSON object with what it saw; exits non-zero on an API error.
"""
import json
import sys
import threading
import time

import os
import tempfile

from kubernetes import client, config, utils, watch

config.load_kube_config(config_file=sys.argv[1])
ns = sys.argv[2]
core = client.CoreV1Api()
apps = client.AppsV1Api()
seen = {}

core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

# Watch from the list's resourceVersion, so that every later change arrives whenever the stream connects.
start = core.list_namespaced_config_map(ns).metadata.resource_version
events = []
stream = watch.Watch()


def follow():
    for event in stream.stream(core.list_namespaced_config_map, namespace=ns, resource_version=start, timeout_seconds=30):
        if event["object"].metadata.name != "settings":
            continue  # kube-root-ca.crt, which the cluster publishes in every namespace
        events.append([event["type"], event["object"].metadata.name, dict(event["object"].data or {})])
        if event["type"] == "DELETED":
            stream.stop()


watcher = threading.Thread(target=follow)
watcher.start()

core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"mode": "production"}))
seen["listed"] = [c.metadata.name for c in core.list_namespaced_config_map(ns).items]
core.patch_namespaced_config_map("settings", ns, {"data": {"tracing": "on"}})
core.patch_namespaced_config_map("settings", ns, [{"op": "replace", "path": "/data/mode", "value": "staging"}])
seen["patched"] = dict(core.read_namespaced_config_map("settings", ns).data)

deployment = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="web"),
    spec=client.V1DeploymentSpec(
        replicas=1,
        selector=client.V1LabelSelector(match_labels={"app": "web"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "web"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="web:1")]))))
apps.create_namespaced_deployment(ns, deployment)
apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 3}})
seen["scale"] = apps.read_namespaced_deployment_scale("web", ns).spec.replicas

# The typed models read what the server writes: a pod as created, started pods, nodes, a service, a deleted pod.
created = core.create_namespaced_pod(ns, client.V1Pod(
    metadata=client.V1ObjectMeta(name="one-off"),
    spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="tool:1.2")])))
seen["created_pod"] = {
    "phase": created.status.phase, "qos": created.status.qos_class, "pull": created.spec.containers[0].image_pull_policy,
    "scheduler": created.spec.scheduler_name, "account": created.spec.service_account_name, "links": created.spec.enable_service_links,
}
deadline = time.time() + 60
started = []
while time.time() < deadline:
    started = [p for p in core.list_namespaced_pod(ns, label_selector="app=web").items
               if p.status.container_statuses and all(c.started for c in p.status.container_statuses)]
    if len(started) == 3:
        break
    time.sleep(0.2)
one = core.read_namespaced_pod(started[0].metadata.name, ns)
seen["started_pod"] = {"ids": bool(one.status.container_statuses[0].image_id and one.status.container_statuses[0].container_id), "qos": one.status.qos_class}
seen["nodes"] = [bool(n.status.node_info.boot_id and n.spec is not None) for n in core.list_node().items]
service = core.create_namespaced_service(ns, client.V1Service(
    metadata=client.V1ObjectMeta(name="web"),
    spec=client.V1ServiceSpec(selector={"app": "web"}, ports=[client.V1ServicePort(port=80)])))
seen["service_status"] = service.status.load_balancer is not None
seen["deleted_pod"] = core.delete_namespaced_pod("one-off", ns).metadata.name

core.delete_namespaced_config_map("settings", ns)
watcher.join(timeout=30)
seen["events"] = events
try:
    core.read_namespaced_config_map("settings", ns)
    seen["after_delete"] = "found"
except client.exceptions.ApiException as error:
    seen["after_delete"] = error.status

# A JSON patch of a whole top-level field, then a delete of a collection chosen by label.
for name, batch in [("a", "old"), ("b", "old"), ("c", "new")]:
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"batch": batch}), data={"k": "1"}))
core.patch_namespaced_config_map("c", ns, [{"op": "replace", "path": "/data", "value": {"k": "2", "l": "3"}}])
seen["replaced_data"] = dict(core.read_namespaced_config_map("c", ns).data)
core.delete_collection_namespaced_config_map(ns, label_selector="batch=old")
seen["after_collection_delete"] = sorted(c.metadata.name for c in core.list_namespaced_config_map(ns, label_selector="batch").items)

# A multi-document file with a DaemonSet, created as utils.create_from_yaml does (each kind through its typed API).
manifest = os.path.join(tempfile.mkdtemp(), "agent.yaml")
with open(manifest, "w") as f:
    f.write("""apiVersion: v1
kind: ConfigMap
metadata: {name: agent-config}
data: {level: info}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: docker-registry.wikimedia.org/agent:1}]}
---
apiVersion: v1
kind: Service
metadata: {name: agent}
spec: {selector: {app: agent}, ports: [{port: 9100}]}
""")
created_objects = utils.create_from_yaml(client.ApiClient(), manifest, namespace=ns)
seen["from_yaml"] = sorted(o.kind for group in created_objects for o in group)
deadline = time.time() + 60
ready = 0
while time.time() < deadline:
    ready = apps.read_namespaced_daemon_set("agent", ns).status.number_ready if apps.read_namespaced_daemon_set("agent", ns).status else 0
    if ready == len(core.list_node().items):
        break
    time.sleep(0.2)
seen["daemon_set_ready"] = ready

print(json.dumps(seen))
