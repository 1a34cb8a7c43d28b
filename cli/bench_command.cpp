// `moeflow bench decode|prefill|machine|transport|nodes|metrics|reload|scaling|speculative|
// cuda-experts|nccl`: throughput against this machine's physical limits.
#include <cstdio>

#include "bench/bench_args.h"
#include "bench/cuda_expert_bench.h"
#include "bench/engine_bench.h"
#include "bench/metrics_bench.h"
#include "bench/nccl_bench.h"
#include "bench/nodes_bench.h"
#include "bench/reload_bench.h"
#include "bench/scaling_bench.h"
#include "bench/speculative_bench.h"
#include "bench/transport_bench.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "core/error.h"
#include "graph/device_check.h"

namespace moeflow::cli {
namespace {

const std::vector<OptionSpec> kDecodeOptions = {
    {"model", "DIR", "checkpoint folder (bench/make_bench_checkpoint.py makes a larger one)", ""},
    {"batch", "B", "sequences decoded together", "1"},
    {"tokens", "N", "decode steps measured per round", "32"},
    {"rounds", "R", "rounds, each pairing a bandwidth measurement with N timed steps", "3"},
    {"prompt", "P", "prompt tokens per sequence before decoding", "16"},
    {"dtype", "TYPE", "f32, bf16 or auto", "auto"},
    {"device", "DEV", "cpu, or cuda:N: the whole model on that GPU, against its copy bandwidth",
     "cpu"},
};
const std::vector<OptionSpec> kNodesOptions = {
    {"model", "DIR", "checkpoint folder", ""},
    {"batch", "B", "sequences decoded together", "1"},
    {"tokens", "N", "decode steps timed per configuration", "32"},
};
const std::vector<OptionSpec> kMetricsOptions = {
    {"model", "DIR", "checkpoint folder", ""},
    {"batch", "B", "sequences decoded together", "1"},
    {"tokens", "N", "decode steps timed per round and pipeline", "32"},
    {"rounds", "R", "rounds, each timing metrics off and on (order alternates)", "6"},
};
const std::vector<OptionSpec> kReloadOptions = {
    {"model", "DIR", "checkpoint folder (at least 4 experts per layer)", ""},
    {"edits", "N", "graph edits timed (each moves 2 experts per layer between nodes)", "6"},
};
const std::vector<OptionSpec> kScalingOptions = {
    {"model", "DIR", "checkpoint folder", ""},
    {"batch", "B", "requests in flight together", "16"},
    {"prompt", "P", "prompt tokens (one token id repeated: the skew)", "32"},
    {"tokens", "N", "tokens generated per request", "8"},
    {"rounds", "R", "timed rounds per policy after the warm-up", "4"},
    {"nodes", "N", "0: one process; 2: router + two expert-node processes, one thread each", "0"},
};
const std::vector<OptionSpec> kCudaExpertOptions = {
    {"rows", "LIST", "row counts, comma-separated", "1,8,64,512,4096,8192"},
    {"small-rows", "LIST", "decode row counts for the small-batch table", "1,2,4,8,16"},
    {"experts", "E", "experts of the layer, all on the GPU", "8"},
    {"top-k", "K", "experts per row", "2"},
    {"hidden", "H", "hidden size", "4096"},
    {"inter", "I", "expert intermediate size", "14336"},
    {"repeats", "R", "timed calls per row count (median reported)", "20"},
    {"device", "N", "the GPU (cuda:N)", "0"},
};
const std::vector<OptionSpec> kNcclOptions = {
    {"sizes", "LIST", "transfer sizes in KiB, comma-separated",
     "64,256,1024,4096,16384,65536,262144"},
    {"device", "N", "the first GPU (cuda:N); with two GPUs the pair is N and N+1", "0"},
    {"mib", "M", "MiB moved per size and path (at least 5 transfers)", "1024"},
};
const std::vector<OptionSpec> kPrefillOptions = {
    {"model", "DIR", "checkpoint folder", ""},
    {"tokens", "N", "prompt length", "512"},
    {"repeats", "R", "timed runs (best is reported)", "3"},
    {"dtype", "TYPE", "f32, bf16 or auto", "auto"},
};
const std::vector<OptionSpec> kSpeculativeOptions = {
    {"model", "DIR", "checkpoint folder", ""},
    {"batch", "LIST", "batch sizes, comma-separated", "1,4,16"},
    {"tokens", "N", "tokens generated per sequence (the first, with the prefill, untimed)", "64"},
    {"gamma", "LIST", "draft lengths 1..8 and/or \"adaptive\", comma-separated", "1,2,4,adaptive"},
    {"draft-top-k", "K", "routed experts per token of the drafter", "1"},
    {"resident", "M", "drafter uses only the M experts per layer its routing uses most (0: all)",
     "0"},
    {"prompt", "P", "random prompt tokens per sequence", "16"},
    {"rounds", "R", "rounds timing every setting once (medians reported)", "3"},
    {"dtype", "TYPE", "f32, bf16 or auto", "auto"},
};
const std::vector<OptionSpec> kTransportOptions = {
    {"hidden", "D", "f32 values per row", "1024"},
    {"top-k", "K", "experts per row in each request", "8"},
    {"rows", "LIST", "batch sizes, comma-separated", "1,16,64,256,1024"},
    {"seconds", "S", "duration of each measurement", "1"},
    {"repeats", "R", "measurements per cell (best is reported)", "3"},
    {"encode", "MODE", "zero-copy (frames point into the batch) or copy", "zero-copy"},
    {"retain-memory", "", "keep freed buffers in the process (transport::retain_freed_buffers)",
     ""},
};

constexpr const char* kUsage =
    "Usage: moeflow bench "
    "<decode|prefill|machine|transport|nodes|metrics|reload|scaling|speculative|cuda-experts|"
    "nccl> "
    "[options]\n\n"
    "  decode     tokens/s of batched decoding vs the memory bandwidth limit (CPU or GPU)\n"
    "  prefill    prompt processing vs the fp32 FMA peak\n"
    "  machine    this machine's measured read bandwidth and FMA peak\n"
    "  transport  TokenBatch round trips between two processes vs raw TCP\n"
    "  nodes      decode with the experts on 1, 2 and 3 nodes; latency per layer hop\n"
    "  metrics    decode with metrics off vs on (the cost of observability)\n"
    "  reload     live graph edits: saving the file to the new placement in use\n"
    "  scaling    skewed load with autoscaling off, threshold and EPLB-style\n"
    "  speculative  self-speculative decoding vs plain greedy decoding\n"
    "  cuda-experts  the GPU expert stage: TFLOP/s vs rows, small-batch GB/s (skipped without a "
    "GPU)\n"
    "  nccl       NCCL send/recv GB/s on one GPU and between two, vs CUDA copies (exit 2 "
    "without a GPU)\n";

}  // namespace

int run_bench(const std::vector<std::string>& argv) {
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    std::fputs(kUsage, stdout);
    return argv.empty() ? 2 : 0;
  }
  const std::string what = argv[0];
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  if (what == "decode") {
    if (print_help_if_asked(rest, "moeflow bench decode --model DIR [options]",
                            "Decode throughput vs the bandwidth limit.", kDecodeOptions))
      return 0;
    const Args args(rest, kDecodeOptions);
    bench::DecodeBenchOptions o;
    o.model = args.require("model");
    o.batch = args.get_int("batch", 1);
    o.tokens = args.get_int("tokens", 32);
    o.rounds = args.get_int("rounds", 3);
    o.prompt = args.get_int("prompt", 16);
    o.dtype = args.get("dtype", "auto");
    const std::string device = args.get("device", "cpu");
    if (!valid_device_name(device))
      throw Error("--device " + device + ": expected cpu or cuda:N, e.g. cuda:0");
    o.cuda_device = cuda_device_index(device);
    if (o.batch < 1 || o.tokens < 1 || o.prompt < 1 || o.rounds < 1)
      throw Error("batch, tokens and prompt must be >= 1");
    return bench::run_decode_bench(o);
  }
  if (what == "prefill") {
    if (print_help_if_asked(rest, "moeflow bench prefill --model DIR [options]",
                            "Prefill throughput vs the FMA peak.", kPrefillOptions))
      return 0;
    const Args args(rest, kPrefillOptions);
    bench::PrefillBenchOptions o;
    o.model = args.require("model");
    o.tokens = args.get_int("tokens", 512);
    o.repeats = args.get_int("repeats", 3);
    o.dtype = args.get("dtype", "auto");
    if (o.tokens < 1 || o.repeats < 1) throw Error("tokens and repeats must be >= 1");
    return bench::run_prefill_bench(o);
  }
  if (what == "nodes") {
    if (print_help_if_asked(rest, "moeflow bench nodes --model DIR [options]",
                            "Decode through the actors with experts on 1, 2 and 3 nodes "
                            "(processes on loopback) and the latency per layer hop.",
                            kNodesOptions))
      return 0;
    const Args args(rest, kNodesOptions);
    bench::NodesBenchOptions o;
    o.model = args.require("model");
    o.batch = args.get_int("batch", 1);
    o.tokens = args.get_int("tokens", 32);
    if (o.batch < 1 || o.tokens < 1) throw Error("batch and tokens must be >= 1");
    return bench::run_nodes_bench(o);
  }
  if (what == "metrics") {
    if (print_help_if_asked(rest, "moeflow bench metrics --model DIR [options]",
                            "Decode through the actors with metrics off and on, alternating "
                            "rounds, beside the DRAM bandwidth limit.",
                            kMetricsOptions))
      return 0;
    const Args args(rest, kMetricsOptions);
    bench::MetricsBenchOptions o;
    o.model = args.require("model");
    o.batch = args.get_int("batch", 1);
    o.tokens = args.get_int("tokens", 32);
    o.rounds = args.get_int("rounds", 6);
    if (o.batch < 1 || o.tokens < 1 || o.rounds < 1)
      throw Error("batch, tokens and rounds must be >= 1");
    return bench::run_metrics_bench(o);
  }
  if (what == "speculative") {
    if (print_help_if_asked(rest, "moeflow bench speculative --model DIR [options]",
                            "Self-speculative decoding (a reduced expert budget drafts, the full "
                            "model verifies) vs plain greedy decoding.",
                            kSpeculativeOptions))
      return 0;
    const Args args(rest, kSpeculativeOptions);
    bench::SpeculativeBenchOptions o;
    o.model = args.require("model");
    if (args.has("batch")) o.batches = bench::parse_count_list(*args.get("batch"), "batch", 4096);
    if (args.has("gamma")) o.gammas = bench::parse_gamma_list(*args.get("gamma"));
    o.tokens = args.get_int("tokens", 64);
    o.draft_top_k = args.get_int("draft-top-k", 1);
    o.resident = args.get_int("resident", 0);
    o.prompt = args.get_int("prompt", 16);
    o.rounds = args.get_int("rounds", 3);
    o.dtype = args.get("dtype", "auto");
    if (o.tokens < 2 || o.prompt < 1 || o.rounds < 1 || o.draft_top_k < 1 || o.resident < 0)
      throw Error("tokens must be >= 2, prompt, rounds and draft-top-k >= 1, resident >= 0");
    return bench::run_speculative_bench(o);
  }
  if (what == "scaling") {
    if (print_help_if_asked(rest, "moeflow bench scaling --model DIR [options]",
                            "Skewed load with the autoscaler off, with the threshold policy and "
                            "with the EPLB-style policy, in one run.",
                            kScalingOptions))
      return 0;
    const Args args(rest, kScalingOptions);
    bench::ScalingBenchOptions o;
    o.model = args.require("model");
    o.batch = args.get_int("batch", 16);
    o.prompt = args.get_int("prompt", 32);
    o.tokens = args.get_int("tokens", 8);
    o.rounds = args.get_int("rounds", 4);
    o.nodes = args.get_int("nodes", 0);
    if (o.batch < 1 || o.prompt < 1 || o.tokens < 1 || o.rounds < 1)
      throw Error("batch, prompt, tokens and rounds must be >= 1");
    if (o.nodes != 0 && o.nodes != 2) throw Error("nodes must be 0 or 2");
    return bench::run_scaling_bench(o);
  }
  if (what == "reload") {
    if (print_help_if_asked(rest, "moeflow bench reload --model DIR [options]",
                            "Times live graph edits that move experts between two expert nodes "
                            "(processes on loopback), from saving the file to the new placement "
                            "in use.",
                            kReloadOptions))
      return 0;
    const Args args(rest, kReloadOptions);
    bench::ReloadBenchOptions o;
    o.model = args.require("model");
    o.edits = args.get_int("edits", 6);
    if (o.edits < 1) throw Error("edits must be >= 1");
    return bench::run_reload_bench(o);
  }
  if (what == "machine") return bench::run_machine_bench();
  if (what == "cuda-experts") {
    if (print_help_if_asked(rest, "moeflow bench cuda-experts [options]",
                            "The GPU expert stage alone (random bf16 experts, uniform top-k "
                            "routing) vs rows, against the measured bf16 GEMM peak and copy "
                            "bandwidth; then, at decode sizes, the small-batch path next to "
                            "the cuBLAS path (GB/s of weights read vs copy bandwidth).",
                            kCudaExpertOptions))
      return 0;
    const Args args(rest, kCudaExpertOptions);
    bench::CudaExpertBenchOptions o;
    if (args.has("rows")) o.rows = bench::parse_count_list(*args.get("rows"), "rows", 1 << 20);
    if (args.has("small-rows"))
      o.small_rows = bench::parse_count_list(*args.get("small-rows"), "small-rows", 1 << 20);
    o.experts = args.get_int("experts", 8);
    o.top_k = args.get_int("top-k", 2);
    o.hidden = args.get_int("hidden", 4096);
    o.inter = args.get_int("inter", 14336);
    o.repeats = args.get_int("repeats", 20);
    o.device = static_cast<int>(args.get_int("device", 0));
    if (o.experts < 1 || o.top_k < 1 || o.top_k > o.experts || o.hidden < 1 || o.inter < 1 ||
        o.repeats < 1 || o.device < 0)
      throw Error(
          "experts, hidden, inter and repeats must be >= 1, top-k 1 to experts, device >= 0");
    return bench::run_cuda_expert_bench(o);
  }
  if (what == "nccl") {
    if (print_help_if_asked(rest, "moeflow bench nccl [options]",
                            "NCCL send/recv GB/s between GPU shards: to the same GPU and, with two "
                            "GPUs, from the first to the second; beside each the CUDA copy that "
                            "bounds it. Exits 2 without a CUDA device or the NCCL library.",
                            kNcclOptions))
      return 0;
    const Args args(rest, kNcclOptions);
    bench::NcclBenchOptions o;
    if (args.has("sizes"))
      o.sizes_kib = bench::parse_count_list(*args.get("sizes"), "sizes", int64_t{1} << 22);
    o.device = static_cast<int>(args.get_int("device", 0));
    o.bytes_per_size_mib = args.get_int("mib", 1024);
    if (o.device < 0 || o.bytes_per_size_mib < 1) throw Error("device must be >= 0, mib >= 1");
    return bench::run_nccl_bench(o);
  }
  if (what == "transport") {
    if (print_help_if_asked(rest, "moeflow bench transport [options]",
                            "TokenBatch transport over TCP loopback vs raw TCP.",
                            kTransportOptions))
      return 0;
    const Args args(rest, kTransportOptions);
    bench::TransportBenchOptions o;
    o.hidden = args.get_int("hidden", 1024);
    o.top_k = args.get_int("top-k", 8);
    if (args.has("rows")) o.rows = bench::parse_count_list(*args.get("rows"), "rows", 1 << 20);
    o.seconds = args.get_double("seconds", 1.0);
    o.repeats = args.get_int("repeats", 3);
    const std::string encode = args.get("encode", "zero-copy");
    if (encode != "zero-copy" && encode != "copy")
      throw Error("--encode \"" + encode + "\": zero-copy or copy");
    o.zero_copy = encode == "zero-copy";
    o.retain_memory = args.has("retain-memory");
    return bench::run_transport_bench(o);
  }
  throw Error(
      "unknown bench \"" + what +
      "\" (decode, prefill, machine, transport, nodes, metrics, reload, scaling, speculative or "
      "cuda-experts or nccl)");
}

}  // namespace moeflow::cli
