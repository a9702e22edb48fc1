// `bloomz logits -m M (-p TEXT | -f FILE) -o OUT.npy [--last]`: float32 logits of every prompt
// position (row j = after token j), or of the last one, as a NumPy .npy v1.0 file.
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <fstream>

#include "bloomz/error.hpp"
#include "bloomz/model.hpp"
#include "bloomz/session.hpp"
#include "bloomz/tokenizer.hpp"
#include "cli/commands.hpp"
#include "cli/prompt_input.hpp"

namespace bloomz::cli {

namespace {

struct LogitsOptions {
  std::string prompt, file, out;
  bool last = false, no_escape = false, no_parse_special = false;
  int64_t ctx_size = 0, batch_size = 512;
  std::string kv_type = "f16";
};

// NumPy format 1.0: magic, version, little-endian u16 header length, a dict padded with spaces
// and ending in '\n' so that the data starts at a multiple of 64 bytes.
void write_npy(const std::string& path, const float* data, int64_t rows, int64_t cols) {
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", rows, cols);
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  if (!f) throw Error(ErrorKind::Io, fmt::format("{}: {}", path, std::strerror(errno)));
  const uint16_t len = static_cast<uint16_t>(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  f.write(reinterpret_cast<const char*>(&len), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(rows * cols * 4));
  if (!f) throw Error(ErrorKind::Io, fmt::format("{}: write failed", path));
}

int run_logits(const LogitsOptions& opt, const CommonOptions& common) {
  apply_runtime_options(common);
  std::string text;
  if (!opt.prompt.empty()) text = opt.no_escape ? opt.prompt : process_escapes(opt.prompt);
  else if (!opt.file.empty()) text = read_file_or_stdin(opt.file);
  else throw Error(ErrorKind::Usage, "logits: give -p TEXT or -f FILE");
  auto model = Model::load(resolve_model_path(common), load_options(common, false));
  const Tokenizer tok = Tokenizer::from_gguf(model->gguf());
  const std::vector<int32_t> ids = tok.encode(text, !opt.no_parse_special);
  if (ids.empty()) throw Error(ErrorKind::Runtime, "the prompt is empty");
  Session s(*model, {.n_ctx = opt.ctx_size, .n_batch = opt.batch_size, .kv_type = kv_type_from_name(opt.kv_type)});
  if (static_cast<int64_t>(ids.size()) > s.n_ctx()) {
    throw Error(ErrorKind::Runtime, fmt::format("the prompt has {} tokens, more than the context of {} (-c/--ctx-size)", ids.size(), s.n_ctx()));
  }
  auto logits = s.eval(ids, opt.last ? LogitsMode::Last : LogitsMode::All);
  const int64_t rows = opt.last ? 1 : static_cast<int64_t>(ids.size());
  write_npy(opt.out, logits.data(), rows, s.n_vocab());
  spdlog::info("wrote {} x {} logits to {}", rows, s.n_vocab(), opt.out);
  return 0;
}

}  // namespace

Command add_logits_command(CLI::App& root, CommonOptions& common) {
  auto opt = std::make_shared<LogitsOptions>();
  CLI::App* sub = root.add_subcommand("logits", "Write the logits of a prompt as a .npy file");
  auto* p = sub->add_option("-p,--prompt", opt->prompt, "The prompt");
  sub->add_option("-f,--file", opt->file, "Prompt from a file ('-' = stdin)")->excludes(p);
  sub->add_option("-o,--output", opt->out, "Output .npy file")->required();
  sub->add_flag("--last", opt->last, "Only the last position: shape [1, n_vocab]");
  sub->add_flag("--no-escape", opt->no_escape, "Do not process escapes in -p");
  sub->add_flag("--no-parse-special", opt->no_parse_special, "Keep special-token text as plain text");
  sub->add_option("-c,--ctx-size", opt->ctx_size, "Context length (0 = the model's)")->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  sub->add_option("-b,--batch-size", opt->batch_size, "Tokens per forward call")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  add_kv_type_option(sub, opt->kv_type);
  return {sub, [opt, &common] { return run_logits(*opt, common); }};
}

}  // namespace bloomz::cli
