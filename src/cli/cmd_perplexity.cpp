// `bloomz perplexity -m M -f FILE [-c N]`: llama-perplexity's chunked perplexity, its output
// (`[1]x,[2]y,...` then `Final estimate: PPL = X +/- Y`, both on stdout here), and its
// KL-divergence mode: `--kl-divergence-base F` writes the base log-probs while computing the
// perplexity; adding `--kl-divergence` reads them back (tokens included, no -f) and compares.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <fmt/format.h>
#include <fstream>

#include "bloomz/error.hpp"
#include "bloomz/model.hpp"
#include "bloomz/session.hpp"
#include "bloomz/tokenizer.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/prompt_input.hpp"
#include "eval.hpp"

namespace bloomz::cli {

namespace {

struct PerplexityOptions {
  std::string file, kld_base;
  bool kld = false, no_parse_special = false;
  int64_t ctx_size = 0, batch_size = 512, chunks = -1;
  std::string kv_type = "f16";
};

// The timing summary of cli.md (stderr, unless -q): all evaluation here is prompt evaluation.
void print_timings(double load_ms, double eval_ms, int64_t n_eval) {
  const double n = static_cast<double>(n_eval);
  fmt::print(stderr, "bloomz: load time        = {:9.2f} ms\n", load_ms);
  fmt::print(stderr, "bloomz: prompt eval time = {:9.2f} ms / {:5} tokens ({:8.2f} ms per token, {:8.2f} tokens per second)\n",
             eval_ms, n_eval, n_eval ? eval_ms / n : 0.0, eval_ms > 0 ? 1000.0 * n / eval_ms : 0.0);
  fmt::print(stderr, "bloomz:        eval time = {:9.2f} ms / {:5} runs   ({:8.2f} ms per token, {:8.2f} tokens per second)\n", 0.0, 0, 0.0, 0.0);
  fmt::print(stderr, "bloomz:       total time = {:9.2f} ms / {:5} tokens\n", load_ms + eval_ms, n_eval);
}


// Linear interpolation between sorted values (llama-perplexity's percentile).
float percentile(const std::vector<float>& v, float fraction) {
  if (fraction <= 0) return v.front();
  if (fraction >= 1) return v.back();
  float p = fraction * static_cast<float>(v.size() - 1);
  const size_t ip = static_cast<size_t>(p);
  p -= static_cast<float>(ip);
  return (1 - p) * v[ip] + p * v[std::min(ip + 1, v.size() - 1)];
}

float median(const std::vector<float>& v) {
  const size_t n = v.size();
  return n % 2 == 0 ? 0.5f * (v[n / 2] + v[n / 2 - 1]) : v[n / 2];
}

double covariance(double a, double b, double ab, int64_t count) {
  if (count < 10) return 0.0;
  const double c = static_cast<double>(count);
  return (ab / c - (a / c) * (b / c)) / (c - 1);
}

void print_kld_summary(const eval::KldStats& r) {
  using eval::mean_and_uncertainty;
  std::string o;
  const auto lq = mean_and_uncertainty(r.q.nll, r.q.nll2, r.count);
  const auto lb = mean_and_uncertainty(r.base.nll, r.base.nll2, r.count);
  const double ppl = std::exp(lq.first), ppl_unc = ppl * lq.second;
  const double ppl_b = std::exp(lb.first), ppl_b_unc = ppl_b * lb.second;
  const double cov = covariance(r.q.nll, r.base.nll, r.sum_nll_nll_base, r.count);
  const double ratio = lq.first - lb.first;
  const double ratio_unc = std::sqrt(std::max(0.0, lq.second * lq.second + lb.second * lb.second - 2 * cov));
  o += "====== Perplexity statistics ======\n";
  o += fmt::format("Mean PPL(Q)                   : {:10.6f} ± {:10.6f}\n", ppl, ppl_unc);
  o += fmt::format("Mean PPL(base)                : {:10.6f} ± {:10.6f}\n", ppl_b, ppl_b_unc);
  if (lq.second > 0 && lb.second > 0) {
    o += fmt::format("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2f}%\n", 100.0 * cov / (lq.second * lb.second));
  }
  o += fmt::format("Mean ln(PPL(Q)/PPL(base))     : {:10.6f} ± {:10.6f}\n", ratio, ratio_unc);
  o += fmt::format("Mean PPL(Q)/PPL(base)         : {:10.6f} ± {:10.6f}\n", std::exp(ratio), std::exp(ratio) * ratio_unc);
  const double diff_unc = std::sqrt(std::max(0.0, ppl_unc * ppl_unc + ppl_b_unc * ppl_b_unc - 2 * ppl * ppl_b * cov));
  o += fmt::format("Mean PPL(Q)-PPL(base)         : {:10.6f} ± {:10.6f}\n\n", ppl - ppl_b, diff_unc);

  std::vector<float> kv = r.kld_values, pv = r.p_diff_values;
  std::sort(kv.begin(), kv.end());
  std::sort(pv.begin(), pv.end());
  const auto kl = mean_and_uncertainty(r.sum_kld, r.sum_kld2, r.count);
  o += "====== KL divergence statistics ======\n";
  o += fmt::format("Mean    KLD: {:10.6f} ± {:10.6f}\n", kl.first, kl.second);
  o += fmt::format("Maximum KLD: {:10.6f}\n", kv.back());
  o += fmt::format("99.9%   KLD: {:10.6f}\n", percentile(kv, 0.999f));
  o += fmt::format("99.0%   KLD: {:10.6f}\n", percentile(kv, 0.990f));
  o += fmt::format("Median  KLD: {:10.6f}\n", median(kv));
  o += fmt::format("Minimum KLD: {:10.6f}\n\n", kv.front());

  const auto pd = mean_and_uncertainty(r.sum_p_diff, r.sum_p_diff2, r.count);
  const auto mse = mean_and_uncertainty(r.sum_p_diff2, r.sum_p_diff4, r.count);
  const double rms = std::sqrt(mse.first), rms_unc = rms > 0 ? 0.5 / rms * mse.second : 0.0;
  const double top = static_cast<double>(r.n_same_top) / static_cast<double>(r.count);
  const double top_unc = r.count > 1 ? std::sqrt(top * (1 - top) / static_cast<double>(r.count - 1)) : 0.0;
  o += "====== Token probability statistics ======\n";
  o += fmt::format("Mean    Δp: {:6.3f} ± {:5.3f} %\n", 100.0 * pd.first, 100.0 * pd.second);
  o += fmt::format("Maximum Δp: {:6.3f}%\n", 100.0 * pv.back());
  o += fmt::format("Median  Δp: {:6.3f}%\n", 100.0 * median(pv));
  o += fmt::format("Minimum Δp: {:6.3f}%\n", 100.0 * pv.front());
  o += fmt::format("RMS Δp    : {:6.3f} ± {:5.3f} %\n", 100.0 * rms, 100.0 * rms_unc);
  o += fmt::format("Same top p: {:6.3f} ± {:5.3f} %\n", 100.0 * top, 100.0 * top_unc);
  write_stdout(o);
}

int run_kl_divergence(const PerplexityOptions& opt, const Model& model) {
  std::ifstream in(opt.kld_base, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, fmt::format("{}: {}", opt.kld_base, std::strerror(errno)));
  const eval::KldBaseHeader h = eval::read_kld_header(in, opt.kld_base);
  if (opt.ctx_size != 0 && opt.ctx_size != h.n_ctx) {
    spdlog::warn("--ctx-size {} ignored: {} was computed with chunks of {}", opt.ctx_size, opt.kld_base, h.n_ctx);
  }
  Session s(model, {.n_ctx = h.n_ctx, .n_batch = opt.batch_size, .kv_type = kv_type_from_name(opt.kv_type)});
  spdlog::info("kl-divergence: {} chunks of {} tokens from {}", h.n_chunk, h.n_ctx, opt.kld_base);
  write_stdout("chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p\n");
  const auto k = eval::kl_divergence(s, h, in, opt.kld_base, [](int64_t c, const eval::KldStats& r) {
    using eval::mean_and_uncertainty;
    const auto lq = mean_and_uncertainty(r.q.nll, r.q.nll2, r.count);
    const auto lb = mean_and_uncertainty(r.base.nll, r.base.nll2, r.count);
    const double cov = covariance(r.q.nll, r.base.nll, r.sum_nll_nll_base, r.count);
    const auto kl = mean_and_uncertainty(r.sum_kld, r.sum_kld2, r.count);
    const auto mse = mean_and_uncertainty(r.sum_p_diff2, r.sum_p_diff4, r.count);
    const double rms = std::sqrt(mse.first);
    const double top = static_cast<double>(r.n_same_top) / static_cast<double>(r.count);
    const double top_unc = r.count > 1 ? std::sqrt(top * (1 - top) / static_cast<double>(r.count - 1)) : 0.0;
    write_stdout(fmt::format("{:4d}    {:9.4f} ± {:9.4f}    {:10.5f} ± {:10.5f}    {:10.5f} ± {:10.5f}    {:6.3f} ± {:6.3f} %    {:6.3f} ± {:6.3f} %\n",
                             c + 1, std::exp(lq.first), std::exp(lq.first) * lq.second, lq.first - lb.first,
                             std::sqrt(std::max(0.0, lq.second * lq.second + lb.second * lb.second - 2 * cov)), kl.first,
                             kl.second, 100.0 * rms, rms > 0 ? 100.0 * 0.5 / rms * mse.second : 0.0, 100.0 * top,
                             100.0 * top_unc));
  });
  write_stdout("\n");
  print_kld_summary(k);
  return 0;
}

int run_perplexity(const PerplexityOptions& opt, const CommonOptions& common) {
  apply_runtime_options(common);
  if (opt.kld && opt.kld_base.empty()) throw Error(ErrorKind::Usage, "perplexity: --kl-divergence needs --kl-divergence-base FILE");
  if (!opt.kld && opt.file.empty()) throw Error(ErrorKind::Usage, "perplexity: give -f FILE");
  const auto t0 = std::chrono::steady_clock::now();
  auto model = Model::load(resolve_model_path(common), load_options(common, true));
  if (opt.kld) return run_kl_divergence(opt, *model);

  const std::string text = read_file_or_stdin(opt.file);
  const Tokenizer tok = Tokenizer::from_gguf(model->gguf());
  const std::vector<int32_t> tokens = tok.encode(text, !opt.no_parse_special);
  const int64_t n_ctx = opt.ctx_size != 0 ? opt.ctx_size : model->config().n_ctx_train;
  if (n_ctx < 3) throw Error(ErrorKind::Usage, fmt::format("perplexity: -c/--ctx-size {} is too small (at least 3)", n_ctx));
  if (static_cast<int64_t>(tokens.size()) < n_ctx) {
    throw Error(ErrorKind::Runtime, fmt::format("perplexity: {} has {} tokens, fewer than one chunk of {} (set -c/--ctx-size)",
                                                opt.file, tokens.size(), n_ctx));
  }
  Session s(*model, {.n_ctx = n_ctx, .n_batch = opt.batch_size, .kv_type = kv_type_from_name(opt.kv_type)});
  std::ofstream base;
  if (!opt.kld_base.empty()) {
    base.open(opt.kld_base, std::ios::binary);
    if (!base) throw Error(ErrorKind::Io, fmt::format("{}: {}", opt.kld_base, std::strerror(errno)));
  }
  int64_t n_chunk = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (opt.chunks >= 0) n_chunk = std::min(n_chunk, opt.chunks);
  spdlog::info("perplexity: {} tokens, {} chunks of n_ctx = {}, scoring the last {} of each", tokens.size(), n_chunk, n_ctx,
               n_ctx - 1 - n_ctx / 2);
  const auto t1 = std::chrono::steady_clock::now();
  const eval::PerplexityStats st =
      eval::perplexity(s, tokens, n_ctx, opt.chunks, opt.kld_base.empty() ? nullptr : &base,
                       [](int64_t c, const eval::PerplexityStats& r) { write_stdout(fmt::format("[{}]{:.4f},", c + 1, r.ppl())); });
  write_stdout("\n");
  if (!opt.kld_base.empty()) {
    base.close();
    if (!base) throw Error(ErrorKind::Io, fmt::format("{}: write failed", opt.kld_base));
    spdlog::info("wrote the KL-divergence base ({} chunks) to {}", n_chunk, opt.kld_base);
  }
  write_stdout(fmt::format("Final estimate: PPL = {:.4f} +/- {:.5f}\n", st.ppl(), st.ppl_uncertainty()));
  if (st.ppl_uncertainty() == 0) spdlog::warn("the uncertainty cannot be estimated from {} scored tokens", st.count);
  const auto t2 = std::chrono::steady_clock::now();
  const double load_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  const double eval_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
  const int64_t n_eval = n_chunk * (n_ctx - 1);
  if (!common.quiet) print_timings(load_ms, eval_ms, n_eval);
  return 0;
}

}  // namespace

Command add_perplexity_command(CLI::App& root, CommonOptions& common) {
  auto opt = std::make_shared<PerplexityOptions>();
  CLI::App* sub = root.add_subcommand("perplexity", "Perplexity of a text file, like llama-perplexity");
  sub->add_option("-f,--file", opt->file, "Text file ('-' = stdin)");
  sub->add_option("-c,--ctx-size", opt->ctx_size, "Chunk length in tokens (0 = the model's context length)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  sub->add_option("-b,--batch-size", opt->batch_size, "Tokens per forward call")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  sub->add_option("--chunks", opt->chunks, "Score at most N chunks (-1 = all)")->check(CLI::Range(int64_t(-1), int64_t(1) << 30));
  sub->add_option("--kl-divergence-base", opt->kld_base,
                  "Base log-probs file: written while computing perplexity, read with --kl-divergence");
  sub->add_flag("--kl-divergence", opt->kld, "Compare this model's token distributions with --kl-divergence-base");
  sub->add_flag("--no-parse-special", opt->no_parse_special, "Keep special-token text as plain text");
  add_kv_type_option(sub, opt->kv_type);
  return {sub, [opt, &common] { return run_perplexity(*opt, common); }};
}

}  // namespace bloomz::cli
