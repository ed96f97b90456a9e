using Capstan.Bench;

return args.Length == 0 ? Usage() : args[0] switch
{
    "render" => RenderBenchmark.Run(args[1..]),
    "state" => await StateBenchmark.RunAsync(args[1..]),
    "api" => await ApiBenchmark.RunAsync(args[1..]),
    "deploy" => await DeployBenchmark.RunAsync(args[1..]),
    "ops" => await OpsBenchmark.RunAsync(args[1..]),
    "image" => await ImageBenchmark.RunAsync(args[1..]),
    "env" => await EnvironmentBenchmark.RunAsync(args[1..]),
    "dashboard" => await DashboardBenchmark.RunAsync(args[1..]),
    "pull" => await PullBenchmark.RunAsync(args[1..]),
    "whiteouts" => await WhiteoutBenchmark.RunAsync(args[1..]),
    "gates" => await GateBenchmark.RunAsync(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: capstan-bench render [--repo DIR] [--iterations N] [--helm PATH --chart DIR]");
    Console.Error.WriteLine("       capstan-bench state [--repo DIR] [--iterations N]");
    Console.Error.WriteLine("       capstan-bench api [--objects N] [--parallel N]");
    Console.Error.WriteLine("       capstan-bench deploy [--releases N] [--repo DIR]");
    Console.Error.WriteLine("       capstan-bench ops [--rounds N] [--repo DIR]");
    Console.Error.WriteLine("       capstan-bench image [--tree DIR]");
    Console.Error.WriteLine("       capstan-bench env [--rounds N] [--repo DIR]");
    Console.Error.WriteLine("       capstan-bench dashboard [--rounds N] [--repo DIR]");
    Console.Error.WriteLine("       capstan-bench pull [--nodes N] [--tree DIR] [--repo DIR]");
    Console.Error.WriteLine("       capstan-bench whiteouts [--files N] [--rounds N]");
    Console.Error.WriteLine("       capstan-bench gates [--repo DIR] [--soak S] [--scrape S] [--windows N] [--rates-only]");
    return 2;
}
