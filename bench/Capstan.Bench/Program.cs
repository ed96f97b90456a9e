using Capstan.Bench;

return args.Length > 0 && args[0] is "render"
    ? RenderBenchmark.Run(args[1..])
    : Usage();

static int Usage()
{
    Console.Error.WriteLine("usage: capstan-bench render [--repo DIR] [--iterations N] [--helm PATH --chart DIR]");
    return 2;
}
