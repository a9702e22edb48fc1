// `bloomz inspect MODEL [--json]`: what is in a model file and what this machine will run it with.
// Loading goes through Model::load, so inspect also validates the whole file.
#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "bloomz/cpu_features.hpp"
#include "bloomz/model.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"

namespace bloomz::cli {

namespace {

struct InspectOptions {
  std::string model;
  bool json = false;
};

std::vector<int64_t> shape_of(const GgufTensorInfo& t) {
  return std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims);
}

std::string opt_u32(const GgufFile& g, const char* key) {
  const GgufKv* kv = g.find(key);
  if (kv == nullptr || kv->value.type != GgufType::UINT32) return "-";
  return std::to_string(kv->value.u);
}

int run_inspect(const InspectOptions& opt, const CommonOptions& common) {
  apply_runtime_options(common);
  CommonOptions with_model = common;
  if (!opt.model.empty()) with_model.model = opt.model;
  const std::string path = resolve_model_path(with_model);
  auto model = Model::load(path, {.repack = false});
  const GgufFile& g = model->gguf();
  const BloomConfig& c = model->config();

  std::map<std::string, std::pair<int64_t, int64_t>> per_type;  // name -> (tensors, bytes)
  for (const GgufTensorInfo& t : g.tensors()) {
    auto& e = per_type[std::string(type_name(t.type))];
    e.first += 1;
    e.second += static_cast<int64_t>(t.n_bytes);
  }
  const std::string tok_model(g.get_string_opt("tokenizer.ggml.model").value_or(""));
  const std::string tok_pre(g.get_string_opt("tokenizer.ggml.pre").value_or(""));
  const uint64_t n_merges = g.has("tokenizer.ggml.merges") ? g.array_length("tokenizer.ggml.merges") : 0;
  const uint32_t ft = c.file_type.value_or(0);

  if (opt.json) {
    nlohmann::json j;
    j["file"] = path;
    j["file_size"] = g.file_size();
    j["gguf_version"] = g.version();
    j["architecture"] = "bloom";
    j["n_vocab"] = c.n_vocab;
    j["n_ctx_train"] = c.n_ctx_train;
    j["n_embd"] = c.n_embd;
    j["n_layer"] = c.n_layer;
    j["n_head"] = c.n_head;
    j["n_ff"] = c.n_ff;
    j["layer_norm_eps"] = c.layer_norm_eps;
    j["file_type"] = c.file_type ? nlohmann::json(*c.file_type) : nlohmann::json(nullptr);
    j["file_type_name"] = c.file_type ? file_type_name(ft) : "unknown";
    j["n_params"] = model->n_params();
    j["tied_output"] = model->tied_output;
    j["tokenizer"] = {{"model", tok_model}, {"pre", tok_pre}, {"n_tokens", c.n_vocab}, {"n_merges", n_merges}};
    for (const char* k : {"bos", "eos", "unknown", "padding"}) {
      auto v = g.get_u32_opt(std::string("tokenizer.ggml.") + k + "_token_id");
      j["tokenizer"][std::string(k) + "_id"] = v ? nlohmann::json(*v) : nlohmann::json(nullptr);
    }
    nlohmann::json tensors = nlohmann::json::array();
    for (const GgufTensorInfo& t : g.tensors()) {
      tensors.push_back({{"name", std::string(t.name)}, {"type", std::string(type_name(t.type))},
                         {"shape", shape_of(t)}, {"offset", t.file_offset}, {"bytes", t.n_bytes}});
    }
    j["tensors"] = tensors;
    nlohmann::json types = nlohmann::json::object();
    for (const auto& [name, e] : per_type) types[name] = {{"tensors", e.first}, {"bytes", e.second}};
    j["bytes_per_type"] = types;
    j["cpu_features"] = cpu_feature_string();
    j["isa"] = std::string(isa_name(active_isa()));
    write_stdout(j.dump() + "\n");
    return 0;
  }

  std::string out;
  out += fmt::format("file:            {} ({} bytes, GGUF v{})\n", path, g.file_size(), g.version());
  out += fmt::format("architecture:    bloom\n");
  out += fmt::format("file type:       {} ({})\n", c.file_type ? std::to_string(ft) : "-", c.file_type ? file_type_name(ft) : "unknown");
  out += fmt::format("n_vocab:         {}\nn_ctx_train:     {}\nn_embd:          {}\nn_layer:         {}\n", c.n_vocab, c.n_ctx_train, c.n_embd, c.n_layer);
  out += fmt::format("n_head:          {} (head dim {})\nn_ff:            {}\nlayer_norm_eps:  {:g}\n", c.n_head, c.head_dim(), c.n_ff, c.layer_norm_eps);
  out += fmt::format("output head:     {}\n", model->tied_output ? "tied to token_embd.weight" : "output.weight");
  out += fmt::format("tokenizer:       model {}, pre {}, {} tokens, {} merges, bos {}, eos {}, unk {}, pad {}\n",
                     tok_model.empty() ? "-" : tok_model, tok_pre.empty() ? "-" : tok_pre, c.n_vocab, n_merges,
                     opt_u32(g, "tokenizer.ggml.bos_token_id"), opt_u32(g, "tokenizer.ggml.eos_token_id"),
                     opt_u32(g, "tokenizer.ggml.unknown_token_id"), opt_u32(g, "tokenizer.ggml.padding_token_id"));
  out += fmt::format("\n{:<28} {:<6} {:<18} {:>12} {:>12}\n", "tensor", "type", "shape", "offset", "bytes");
  for (const GgufTensorInfo& t : g.tensors()) {
    out += fmt::format("{:<28} {:<6} {:<18} {:>12} {:>12}\n", t.name, type_name(t.type),
                       fmt::format("[{}]", fmt::join(shape_of(t), ", ")), t.file_offset, t.n_bytes);
  }
  out += fmt::format("\nparameters:      {}\n", model->n_params());
  for (const auto& [name, e] : per_type) out += fmt::format("  {:<6} {:>4} tensors {:>14} bytes\n", name, e.first, e.second);
  out += fmt::format("cpu features:    {}\nkernels:         {}\n", cpu_feature_string(), isa_name(active_isa()));
  write_stdout(out);
  return 0;
}

}  // namespace

Command add_inspect_command(CLI::App& root, CommonOptions& common) {
  auto opt = std::make_shared<InspectOptions>();
  CLI::App* sub = root.add_subcommand("inspect", "Metadata, tensor table, totals and the chosen kernels of a model");
  sub->add_option("MODEL", opt->model, "Model file (default: -m, $BLOOMZ_MODEL, models/bloomz-560m.Q4_K_M.gguf)");
  sub->add_flag("--json", opt->json, "One JSON object on stdout");
  return {sub, [opt, &common] { return run_inspect(*opt, common); }};
}

}  // namespace bloomz::cli
