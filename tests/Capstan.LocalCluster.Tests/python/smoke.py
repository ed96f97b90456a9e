"""The official Python client against a cluster: create, list, patch, watch, scale and delete.

Usage: smoke.py KUBECONFIG NAMESPACE. Prints one JSON object with what it saw; exits non-zero on an API error.
"""
import json
import sys
import threading

from kubernetes import client, config, watch

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

core.delete_namespaced_config_map("settings", ns)
watcher.join(timeout=30)
seen["events"] = events
try:
    core.read_namespaced_config_map("settings", ns)
    seen["after_delete"] = "found"
except client.exceptions.ApiException as error:
    seen["after_delete"] = error.status

print(json.dumps(seen))
