// Issue 9: `bloomz perplexity` (llama-perplexity's method, KL divergence against a saved base)
// and `bloomz score` (choice log-likelihoods, prefix sharing) on the fixture models, checked
// against llama.cpp's fixture logits where they are stored and against bloomz's own full-sequence
// logits elsewhere.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <algorithm>
#include <filesystem>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bloomz/error.hpp"
#include "bloomz/model.hpp"
#include "bloomz/session.hpp"
#include "bloomz/tokenizer.hpp"
#include "eval.hpp"
#include "support/npy.hpp"
#include "support/run_bloomz.hpp"
#include "support/test_files.hpp"

using namespace bloomz;
using bloomz::test::data_path;
using nlohmann::json;

namespace {

using bloomz::test::Outcome;

std::string temp_path(const std::string& tag) {
  static int n = 0;
  return (std::filesystem::temp_directory_path() / ("bloomz-eval-" + std::to_string(getpid()) + "-" + std::to_string(n++) + tag)).string();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

Outcome run(const std::string& args) { return bloomz::test::run_bloomz(args); }

std::string model_path(const std::string& name) { return data_path("models/" + name + ".gguf"); }

json fixture_prompts(const std::string& name) { return json::parse(bloomz::test::read_text(data_path("ref/" + name + "/prompts.json"))); }

// Stored fixture rows: position -> row of llama.cpp's logits.
std::map<int64_t, std::vector<float>> fixture_rows(const std::string& name, int prompt) {
  const json rows = json::parse(bloomz::test::read_text(data_path("ref/" + name + "/rows.json")));
  const auto m = bloomz::test::read_npy_f32(data_path("ref/" + name + "/logits_exact_p" + std::to_string(prompt) + ".npy"));
  std::map<int64_t, std::vector<float>> out;
  const json& pos = rows[static_cast<size_t>(prompt)];
  for (size_t r = 0; r < pos.size(); ++r) out[pos[r].get<int64_t>()] = std::vector<float>(m.row(static_cast<int64_t>(r)), m.row(static_cast<int64_t>(r)) + m.cols);
  return out;
}

// bloomz's logits for every position of `ids` (F32 KV cache, one session).
std::vector<float> own_logits(const Model& model, const std::vector<int32_t>& ids) {
  Session s(model, {.n_ctx = static_cast<int64_t>(ids.size()), .n_batch = 512, .kv_type = KvType::F32});
  auto l = s.eval(ids, LogitsMode::All);
  return {l.begin(), l.end()};
}

struct PplOutput {
  std::vector<double> running;
  double ppl = 0, unc = 0;
};

PplOutput parse_ppl(const std::string& out) {
  PplOutput p;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Final estimate: PPL = ", 0) == 0) {
      std::sscanf(line.c_str(), "Final estimate: PPL = %lf +/- %lf", &p.ppl, &p.unc);
    } else if (!line.empty() && line[0] == '[') {
      std::istringstream items(line);
      std::string it;
      while (std::getline(items, it, ',')) {
        if (!it.empty()) p.running.push_back(std::stod(it.substr(it.find(']') + 1)));
      }
    }
  }
  return p;
}

double rel(double a, double b) { return std::fabs(a - b) / std::fabs(b); }

}  // namespace

// One fixture prompt taken as one chunk (-c = its length): llama-perplexity scores the logits of
// positions first = n/2 .. n-2 (predicting tokens first+1 .. n-1). The fixture stores only some
// rows (rows.json), so the expected NLL takes llama.cpp's logits at the stored scored positions
// and bloomz's own logits at the others; the stored ones are also compared one by one.
TEST(Perplexity, OneChunkMatchesFixtureLogits) {
  // Float files: 0.1 % as the issue asks. Quantized files: bloomz's forward pass itself differs
  // from llama.cpp's by up to 0.5 in a logit there (forward_test's bound), so the check is looser.
  for (const std::string name : {"small256-f32", "small256-f16", "tiny-odd-f32", "tiny-odd-f16", "small256-q8_0"}) {
    const bool float_file = name.ends_with("-f32") || name.ends_with("-f16");
    const double pos_tol = float_file ? 0.02 : 0.1, ppl_tol = float_file ? 1e-3 : 5e-3;
    const auto model = Model::load(model_path(name));
    const Tokenizer tok = Tokenizer::from_gguf(model->gguf());
    const json prompts = fixture_prompts(name);
    for (int p : {1, 2, 3, 4}) {
      const json& fx = prompts[static_cast<size_t>(p)];
      const std::vector<int32_t> ids = fx["tokens"].get<std::vector<int32_t>>();
      const std::string text = fx["text"].get<std::string>();
      ASSERT_EQ(tok.encode(text, true), ids) << name << " p" << p;
      const int64_t n = static_cast<int64_t>(ids.size()), first = n / 2, V = model->config().n_vocab;
      const auto stored = fixture_rows(name, p);
      const auto own = own_logits(*model, ids);
      double nll_mixed = 0, nll_own = 0, nll2_own = 0;
      int n_stored = 0;
      for (int64_t j = first; j <= n - 2; ++j) {
        const int32_t next = ids[static_cast<size_t>(j + 1)];
        const double v_own = -eval::token_logprob(std::span<const float>(own.data() + j * V, static_cast<size_t>(V)), next);
        nll_own += v_own;
        nll2_own += v_own * v_own;
        if (auto it = stored.find(j); it != stored.end()) {
          const double v_fx = -eval::token_logprob(it->second, next);
          EXPECT_NEAR(v_own, v_fx, pos_tol) << name << " p" << p << " position " << j;
          nll_mixed += v_fx;
          ++n_stored;
        } else {
          nll_mixed += v_own;
        }
      }
      const double count = static_cast<double>(n - 1 - first);
      const double ppl_expected = std::exp(nll_mixed / count);
      const std::string file = temp_path(".txt");
      write_file(file, text);
      const Outcome r = run("perplexity -m " + model_path(name) + " -f " + file + " -c " + std::to_string(n) + " --kv-type f32 -t 2");
      std::filesystem::remove(file);
      ASSERT_EQ(r.status, 0) << r.err;
      const PplOutput out = parse_ppl(r.out);
      ASSERT_EQ(out.running.size(), 1u) << r.out;
      EXPECT_LE(rel(out.ppl, ppl_expected), ppl_tol) << name << " p" << p << ": bloomz " << out.ppl << ", expected " << ppl_expected
                                                  << " (" << n_stored << " of " << count << " positions from the fixture)";
      // The printed numbers are exactly llama-perplexity's formulas over bloomz's own NLLs.
      const double mean = nll_own / count, var = nll2_own / count - mean * mean;
      EXPECT_NEAR(out.ppl, std::exp(mean), 1e-4 + 1e-5 * std::exp(mean));
      EXPECT_NEAR(out.unc, std::exp(mean) * std::sqrt(var / (count - 1)), 1e-5 + 1e-4 * out.unc);
      EXPECT_NEAR(out.running[0], out.ppl, 1e-4 + 1e-5 * out.ppl);
    }
  }
}

// Several chunks: the running estimates [i] use every chunk so far, the KV cache is cleared per
// chunk, and the tail shorter than a chunk is dropped.
TEST(Perplexity, RunningEstimatesOverChunks) {
  const std::string name = "small256-f32";
  const auto model = Model::load(model_path(name));
  const json fx = fixture_prompts(name)[4];
  const std::vector<int32_t> ids = fx["tokens"].get<std::vector<int32_t>>();
  const int64_t n_ctx = 64, V = model->config().n_vocab, first = n_ctx / 2;
  std::vector<double> expected;
  double nll = 0;
  int64_t count = 0;
  for (int64_t c = 0; c + n_ctx <= static_cast<int64_t>(ids.size()); c += n_ctx) {
    const std::vector<int32_t> chunk(ids.begin() + c, ids.begin() + c + n_ctx);
    const auto own = own_logits(*model, chunk);
    for (int64_t j = first; j <= n_ctx - 2; ++j) {
      nll -= eval::token_logprob(std::span<const float>(own.data() + j * V, static_cast<size_t>(V)), chunk[static_cast<size_t>(j + 1)]);
      ++count;
    }
    expected.push_back(std::exp(nll / static_cast<double>(count)));
  }
  ASSERT_EQ(expected.size(), 3u);  // 208 tokens = 3 chunks of 64 + a dropped tail
  const std::string file = temp_path(".txt");
  write_file(file, fx["text"].get<std::string>());
  const Outcome r = run("perplexity -m " + model_path(name) + " -f " + file + " -c 64 -b 16 --kv-type f32 -t 2");
  ASSERT_EQ(r.status, 0) << r.err;
  const PplOutput out = parse_ppl(r.out);
  ASSERT_EQ(out.running.size(), expected.size()) << r.out;
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(out.running[i], expected[i], 1e-4 + 1e-5 * expected[i]) << i;
  EXPECT_NEAR(out.ppl, expected.back(), 1e-4 + 1e-5 * expected.back());
  // Output format: exactly the progress line and the final line on stdout.
  EXPECT_EQ(r.out.substr(0, 3), "[1]");
  EXPECT_NE(r.out.find(",\nFinal estimate: PPL = "), std::string::npos) << r.out;
  // --chunks limits the chunks; too little text is a runtime error (exit 1, one line).
  const Outcome two = run("perplexity -m " + model_path(name) + " -f " + file + " -c 64 --chunks 2 --kv-type f32 -t 2");
  EXPECT_EQ(parse_ppl(two.out).running.size(), 2u);
  const Outcome too_short = run("perplexity -m " + model_path(name) + " -f " + file + " -c 255");
  EXPECT_EQ(too_short.status, 1);
  EXPECT_EQ(too_short.out, "");
  EXPECT_EQ(std::count(too_short.err.begin(), too_short.err.end(), '\n'), 1) << too_short.err;
  EXPECT_NE(too_short.err.find("fewer than one chunk"), std::string::npos) << too_short.err;
  EXPECT_EQ(run("perplexity -m " + model_path(name)).status, 2);  // no -f
  std::filesystem::remove(file);
}

// The base file (llama-perplexity's `_logits_` layout) and KL divergence: a file against itself
// gives KLD 0 and 100 % top-1 agreement; a quantized file against F32 gives KLD > 0.
TEST(Perplexity, KlDivergence) {
  const json fx = fixture_prompts("small256-f32")[4];
  const std::string text_file = temp_path(".txt"), base = temp_path(".kld");
  write_file(text_file, fx["text"].get<std::string>());
  const Outcome w = run("perplexity -m " + model_path("small256-f32") + " -f " + text_file +
                        " -c 64 --kv-type f32 -t 2 --kl-divergence-base " + base);
  ASSERT_EQ(w.status, 0) << w.err;
  const int64_t n_vocab = 4260, n_ctx = 64, n_chunk = 3, words = 2 * ((n_vocab + 1) / 2) + 4;
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(base)),
            8 + 12 + 4 * n_chunk * n_ctx + n_chunk * (n_ctx - 1 - n_ctx / 2) * words * 2);

  // In process: the same model against its own base.
  {
    const auto model = Model::load(model_path("small256-f32"));
    std::ifstream in(base, std::ios::binary);
    const auto h = eval::read_kld_header(in, base);
    EXPECT_EQ(h.n_ctx, n_ctx);
    EXPECT_EQ(h.n_chunk, n_chunk);
    EXPECT_EQ(std::vector<int32_t>(h.tokens.begin(), h.tokens.begin() + 10),
              std::vector<int32_t>(fx["tokens"].begin(), fx["tokens"].begin() + 10));
    Session s(*model, {.n_ctx = n_ctx, .n_batch = 512, .kv_type = KvType::F32});
    const auto k = eval::kl_divergence(s, h, in, base, {});
    EXPECT_EQ(k.count, n_chunk * (n_ctx - 1 - n_ctx / 2));
    EXPECT_LT(k.sum_kld / static_cast<double>(k.count), 1e-6);
    EXPECT_EQ(k.n_same_top, k.count);
    // PPL(base) from the packed log-probs: log-probs more than 16 below the top are clamped up
    // (llama.cpp's packing), so it can only be lower than PPL(Q) of the same logits.
    EXPECT_LE(k.base.nll, k.q.nll + 1e-3);
  }
  const Outcome self = run("perplexity -m " + model_path("small256-f32") + " --kl-divergence-base " + base + " --kl-divergence --kv-type f32 -t 2");
  ASSERT_EQ(self.status, 0) << self.err;
  double kld = -1, kld_unc = -1, top = -1;
  const size_t at = self.out.find("Mean    KLD:");
  ASSERT_NE(at, std::string::npos) << self.out;
  std::sscanf(self.out.c_str() + at, "Mean    KLD: %lf ± %lf", &kld, &kld_unc);
  const size_t at_top = self.out.find("Same top p:");
  ASSERT_NE(at_top, std::string::npos) << self.out;
  std::sscanf(self.out.c_str() + at_top, "Same top p: %lf", &top);
  EXPECT_NEAR(kld, 0.0, 1e-6);
  EXPECT_EQ(top, 100.0);

  const Outcome q = run("perplexity -m " + model_path("small256-q4_0") + " --kl-divergence-base " + base + " --kl-divergence -t 2");
  ASSERT_EQ(q.status, 0) << q.err;
  std::sscanf(q.out.c_str() + q.out.find("Mean    KLD:"), "Mean    KLD: %lf", &kld);
  EXPECT_GT(kld, 1e-4) << q.out;

  // A file that is not a base file: exit 1, the path named.
  const Outcome bad = run("perplexity -m " + model_path("small256-f32") + " --kl-divergence-base " + text_file + " --kl-divergence");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find(text_file), std::string::npos) << bad.err;
  std::filesystem::remove(text_file);
  std::filesystem::remove(base);
}

namespace {

std::vector<json> run_score(const std::string& model, const std::string& file, const std::string& extra, Outcome* outcome = nullptr) {
  const Outcome r = run("score -m " + model + " --batch-file " + file + " --kv-type f32 -t 2 " + extra);
  EXPECT_EQ(r.status, 0) << r.err;
  if (outcome != nullptr) *outcome = r;
  std::vector<json> out;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) out.push_back(json::parse(line));
  return out;
}

}  // namespace

// Score sums against llama.cpp's logits: items cut from fixture prompt 1 at a token boundary
// whose row is stored; each choice is one token, so its score is one log-softmax of that row.
TEST(Score, SumsEqualFixtureLogSoftmax) {
  for (const std::string name : {"small256-f32", "tiny-odd-f32", "small256-q8_0"}) {
    const double tol = name.ends_with("-f32") ? 0.02 : 0.1;  // see OneChunkMatchesFixtureLogits
    const auto model = Model::load(model_path(name));
    const Tokenizer tok = Tokenizer::from_gguf(model->gguf());
    const json fx = fixture_prompts(name)[1];
    const std::vector<int32_t> ids = fx["tokens"].get<std::vector<int32_t>>();
    const auto stored = fixture_rows(name, 1);
    std::string items;
    std::vector<std::pair<int64_t, std::vector<int32_t>>> expect;  // row, choice token per choice
    for (const auto& [pos, row] : stored) {
      const int64_t k = pos + 1;  // prompt = ids[0, k), the choice's token is predicted by row pos
      if (k >= static_cast<int64_t>(ids.size())) continue;
      const std::vector<int32_t> prompt(ids.begin(), ids.begin() + k);
      const std::string prompt_text = tok.decode(prompt);
      if (tok.encode(prompt_text, false) != prompt) continue;
      json choices = json::array();
      std::vector<int32_t> choice_ids;
      for (int32_t c : {ids[static_cast<size_t>(k)], int32_t(300), int32_t(1000)}) {
        const std::string t = tok.decode(std::vector<int32_t>{c});
        if (tok.encode(t, false) != std::vector<int32_t>{c}) continue;
        choices.push_back(t);
        choice_ids.push_back(c);
      }
      if (choice_ids.empty()) continue;
      items += json{{"id", k}, {"prompt", prompt_text}, {"choices", choices}, {"label", 0}}.dump() + "\n";
      expect.emplace_back(pos, choice_ids);
    }
    ASSERT_GE(expect.size(), 5u) << name;
    const std::string file = temp_path(".jsonl");
    write_file(file, items);
    Outcome r;
    const auto out = run_score(model_path(name), file, "--no-parse-special", &r);
    ASSERT_EQ(out.size(), expect.size());
    for (size_t i = 0; i < out.size(); ++i) {
      const auto& row = stored.at(expect[i].first);
      ASSERT_EQ(out[i]["scores"].size(), expect[i].second.size());
      for (size_t c = 0; c < expect[i].second.size(); ++c) {
        const double want = eval::token_logprob(row, expect[i].second[c]);
        EXPECT_NEAR(out[i]["scores"][c]["sum"].get<double>(), want, tol) << name << " item " << i << " choice " << c;
        EXPECT_EQ(out[i]["scores"][c]["n_tokens"], 1);
      }
      EXPECT_TRUE(out[i].contains("correct"));
    }
    EXPECT_NE(r.err.find("accuracy = "), std::string::npos) << r.err;
    std::filesystem::remove(file);
  }
}

// Shared-prefix scoring gives the numbers of scoring each prompt+choice from scratch, and both
// equal the sums computed here from one full-sequence evaluation per prompt+choice.
TEST(Score, SharedPrefixEqualsSeparate) {
  const std::string name = "small256-q4_0";
  const auto model = Model::load(model_path(name));
  const Tokenizer tok = Tokenizer::from_gguf(model->gguf());
  const int64_t V = model->config().n_vocab;
  double max_diff_modes = 0, max_diff_ref = 0;
  for (const char* set : {"xcopa-et-8.jsonl", "xwinograd-en-6.jsonl", "copa-harness-4.jsonl"}) {
    const std::string file = data_path(std::string("eval/") + set);
    const auto shared = run_score(model_path(name), file, "");
    const auto separate = run_score(model_path(name), file, "--no-share-prefix");
    ASSERT_EQ(shared.size(), separate.size());
    std::istringstream lines(bloomz::test::read_text(file));
    std::string line;
    for (size_t i = 0; i < shared.size() && std::getline(lines, line); ++i) {
      const json item = json::parse(line);
      std::vector<std::pair<std::string, std::string>> pairs;
      if (item.contains("choices")) {
        for (const auto& c : item["choices"]) pairs.emplace_back(item["prompt"], c);
      } else {
        for (const auto& c : item["contexts"]) pairs.emplace_back(c, item["continuation"]);
      }
      ASSERT_EQ(shared[i]["scores"].size(), pairs.size());
      EXPECT_EQ(shared[i]["best"], separate[i]["best"]);
      EXPECT_EQ(shared[i]["id"], item["id"]);
      for (size_t c = 0; c < pairs.size(); ++c) {
        const auto pre = tok.encode(pairs[c].first), cont = tok.encode(pairs[c].second);
        std::vector<int32_t> all = pre;
        all.insert(all.end(), cont.begin(), cont.end());
        const auto own = own_logits(*model, all);
        double want = 0;
        for (size_t j = pre.size(); j < all.size(); ++j) {
          want += eval::token_logprob(std::span<const float>(own.data() + (j - 1) * V, static_cast<size_t>(V)), all[j]);
        }
        const double a = shared[i]["scores"][c]["sum"], b = separate[i]["scores"][c]["sum"];
        EXPECT_EQ(shared[i]["scores"][c]["n_tokens"].get<size_t>(), cont.size());
        EXPECT_NEAR(a, b, 1e-4) << set << " item " << i << " choice " << c;
        EXPECT_NEAR(b, want, 1e-4) << set << " item " << i << " choice " << c;
        EXPECT_NEAR(shared[i]["scores"][c]["mean"].get<double>(), a / static_cast<double>(cont.size()), 1e-9);
        max_diff_modes = std::max(max_diff_modes, std::fabs(a - b));
        max_diff_ref = std::max(max_diff_ref, std::fabs(b - want));
      }
      if (item.contains("label")) {
        EXPECT_EQ(shared[i]["correct"], item["label"] == shared[i]["best"]);
      }
    }
  }
  std::printf("max |shared - separate| = %.3g, max |separate - full-sequence| = %.3g\n", max_diff_modes, max_diff_ref);
}

// The scorer reuses the cache: it evaluates fewer tokens when choices share a prompt.
TEST(Score, PrefixSharingEvaluatesFewerTokens) {
  const auto model = Model::load(model_path("small256-q4_0"));
  const Tokenizer tok = Tokenizer::from_gguf(model->gguf());
  Session a(*model, {.n_ctx = 0, .n_batch = 512, .kv_type = KvType::F32});
  Session b(*model, {.n_ctx = 0, .n_batch = 512, .kv_type = KvType::F32});
  eval::ContinuationScorer shared(a, true), separate(b, false);
  const auto prompt = tok.encode("The lighthouse keeper climbed the spiral stairs every evening");
  for (const char* c : {" at dusk", " with a lamp", " and sang"}) {
    const auto x = shared.score(prompt, tok.encode(c)), y = separate.score(prompt, tok.encode(c));
    EXPECT_NEAR(x.sum, y.sum, 1e-4);
  }
  EXPECT_LT(shared.tokens_evaluated(), separate.tokens_evaluated());
  EXPECT_THROW(shared.score({}, tok.encode(" x")), Error);
}

// Per-item errors: an error line for that item, the run continues, exit 1; usage errors exit 2.
TEST(Score, ItemErrorsAndUsage) {
  const std::string file = temp_path(".jsonl");
  write_file(file, "{\"id\": 1, \"prompt\": \"Hello\", \"choices\": [\" world\", \" there\"], \"label\": 1}\nnot json\n"
                   "{\"id\": 3, \"prompt\": \"Hello\"}\n\n{\"id\": 4, \"contexts\": [\"A cat\", \"A dog\"], \"continuation\": \" barks.\"}\n");
  const Outcome r = run("score -m " + model_path("small256-q4_0") + " --batch-file " + file);
  EXPECT_EQ(r.status, 1);
  std::vector<json> out;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) out.push_back(json::parse(line));
  ASSERT_EQ(out.size(), 4u) << r.out;
  EXPECT_EQ(out[0]["id"], 1);
  EXPECT_TRUE(out[0].contains("correct"));
  EXPECT_TRUE(out[1].contains("error"));
  EXPECT_EQ(out[2]["id"], 3);
  EXPECT_TRUE(out[2].contains("error"));
  EXPECT_EQ(out[3]["scores"].size(), 2u);
  EXPECT_FALSE(out[3].contains("correct"));
  EXPECT_EQ(run("score -m " + model_path("small256-q4_0")).status, 2);
  EXPECT_EQ(run("score -m " + model_path("small256-q4_0") + " --batch-file " + file + " --norm median").status, 2);
  std::filesystem::remove(file);
}
