// `bloomz tokenize` and `bloomz detokenize` (cli.md): llama-tokenize's output formats over the
// tokenizer of a model file. Only the tokenizer is loaded, never the weights.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bloomz/error.hpp"
#include "bloomz/gguf.hpp"
#include "bloomz/mapped_file.hpp"
#include "bloomz/tokenizer.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "unicode.hpp"

namespace bloomz::cli {

namespace {

struct TokenizeOptions {
  bool has_prompt = false, has_file = false;  // set from the option counts (-p "" is a prompt)
  std::string prompt;
  std::string file;
  bool from_stdin = false;
  bool ids = false;
  bool json = false;
  bool show_count = false;
  bool no_parse_special = false;
  bool no_escape = false;
  bool escape = true;  // -e/--escape: accepted for llama.cpp compatibility (the default)
};

struct DetokenizeOptions {
  std::string ids;
  bool special = false;
};

// The model's tokenizer; the mapping is released once it is built (the Tokenizer owns copies).
Tokenizer load_tokenizer(const CommonOptions& common) {
  const std::string path = resolve_model_path(common);
  const auto t0 = std::chrono::steady_clock::now();
  MappedFile file = MappedFile::open(path);
  const GgufFile gguf = GgufFile::parse(file.bytes(), path);
  Tokenizer tok = Tokenizer::from_gguf(gguf);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  spdlog::debug("tokenizer: {} tokens, {} merges, loaded in {:.1f} ms from {}", tok.n_vocab(),
                tok.n_merges(), ms, path);
  return tok;
}

// `-p` escapes of cli.md: \n \t \' \" \\ ; any other backslash is kept as it is.
std::string process_escapes(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 1 < in.size()) {
      const char c = in[i + 1];
      char r = 0;
      switch (c) {
        case 'n': r = '\n'; break;
        case 't': r = '\t'; break;
        case '\'': r = '\''; break;
        case '"': r = '"'; break;
        case '\\': r = '\\'; break;
        default: break;
      }
      if (r != 0) {
        out.push_back(r);
        ++i;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

std::string read_stream(std::FILE* f, const std::string& name) {
  std::string s;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  if (std::ferror(f)) throw Error(ErrorKind::Io, fmt::format("{}: read error", name));
  return s;
}

std::string read_all_stdin() { return read_stream(stdin, "stdin"); }

std::string read_file(const std::string& path) {
  if (path == "-") return read_all_stdin();
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw Error(ErrorKind::Io, fmt::format("{}: cannot open the file", path));
  try {
    std::string s = read_stream(f, path);
    std::fclose(f);
    return s;
  } catch (...) {
    std::fclose(f);
    throw;
  }
}

std::string ids_line(const std::vector<int32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(ids[i]);
  }
  out += "]\n";
  return out;
}

int run_tokenize(const TokenizeOptions& opt, const CommonOptions& common) {
  const int sources = (opt.has_prompt ? 1 : 0) + (opt.has_file ? 1 : 0) + (opt.from_stdin ? 1 : 0);
  if (sources != 1)
    throw Error(ErrorKind::Usage, "tokenize: give exactly one of -p/--prompt, -f/--file, --stdin");
  std::string text;
  if (opt.has_prompt)
    text = opt.no_escape ? opt.prompt : process_escapes(opt.prompt);
  else if (opt.has_file)
    text = read_file(opt.file);
  else
    text = read_all_stdin();

  const Tokenizer tok = load_tokenizer(common);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok.encode(text, /*parse_special=*/!opt.no_parse_special);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  spdlog::debug("tokenize: {} bytes -> {} tokens in {:.2f} ms", text.size(), ids.size(), ms);

  std::string out;
  if (opt.json) {
    nlohmann::json j;
    j["ids"] = ids;
    nlohmann::json pieces = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back(unicode::sanitize_utf8(tok.token_to_piece(id, true)));
    j["pieces"] = std::move(pieces);
    out = j.dump() + "\n";
  } else if (opt.ids) {
    out = ids_line(ids);
  } else {
    for (int32_t id : ids) out += fmt::format("{:6d} -> '{}'\n", id, tok.token_to_piece(id, true));
  }
  if (opt.show_count) out += fmt::format("Total number of tokens: {}\n", ids.size());
  write_stdout(out);
  flush_stdout();
  return 0;
}

// "1,2,3", "1 2 3", "[1, 2, 3]" (any mix of commas, blanks and one pair of brackets).
std::vector<int32_t> parse_id_list(const std::string& s, int32_t n_vocab) {
  std::vector<int32_t> ids;
  std::string item;
  const auto finish = [&] {
    if (item.empty()) return;
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used, 10);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size())
      throw Error(ErrorKind::Usage, fmt::format("detokenize: '{}' is not a token id", item));
    if (v < 0 || v >= n_vocab)
      throw Error(ErrorKind::Usage,
                  fmt::format("detokenize: token id {} is out of range (vocabulary of {})", item, n_vocab));
    ids.push_back(static_cast<int32_t>(v));
    item.clear();
  };
  for (char c : s) {
    if (c == ',' || c == '[' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r')
      finish();
    else
      item.push_back(c);
  }
  finish();
  return ids;
}

int run_detokenize(const DetokenizeOptions& opt, const CommonOptions& common, bool ids_given) {
  const std::string list = ids_given ? opt.ids : read_all_stdin();
  const Tokenizer tok = load_tokenizer(common);
  const std::vector<int32_t> ids = parse_id_list(list, tok.n_vocab());
  write_stdout(tok.decode(ids, opt.special));
  flush_stdout();
  return 0;
}

}  // namespace

Command add_tokenize_command(CLI::App& root, CommonOptions& common) {
  auto opt = std::make_shared<TokenizeOptions>();
  CLI::App* sub = root.add_subcommand("tokenize", "Text to token ids, like llama-tokenize");
  auto* prompt = sub->add_option("-p,--prompt", opt->prompt, "Text to tokenize (escapes \\n \\t \\' \\\" \\\\ processed)");
  auto* file = sub->add_option("-f,--file", opt->file, "Tokenize this file, byte for byte ('-' = stdin)");
  sub->add_flag("--stdin", opt->from_stdin, "Tokenize stdin, byte for byte");
  auto* ids = sub->add_flag("--ids", opt->ids, "Print only the ids, as one line [1, 2, 3]");
  sub->add_flag("--json", opt->json, "Print {\"ids\": [...], \"pieces\": [...]}")->excludes(ids);
  sub->add_flag("--show-count", opt->show_count, "Also print the number of tokens");
  sub->add_flag("--no-parse-special", opt->no_parse_special,
                "Keep the text of special tokens (</s>, ...) as text");
  sub->add_flag("--no-escape", opt->no_escape, "Do not process escapes in -p");
  sub->add_flag("-e,--escape", opt->escape, "Process escapes in -p (the default)");
  return {sub, [opt, prompt, file, &common] {
            opt->has_prompt = prompt->count() > 0;
            opt->has_file = file->count() > 0;
            return run_tokenize(*opt, common);
          }};
}

Command add_detokenize_command(CLI::App& root, CommonOptions& common) {
  auto opt = std::make_shared<DetokenizeOptions>();
  CLI::App* sub = root.add_subcommand("detokenize", "Token ids to text");
  auto* ids = sub->add_option("--ids", opt->ids, "Ids: 1,2,3 or '1 2 3' or '[1, 2, 3]' (default: read stdin)");
  sub->add_flag("--special", opt->special, "Print special tokens such as </s>");
  return {sub, [opt, ids, &common] { return run_detokenize(*opt, common, ids->count() > 0); }};
}

}  // namespace bloomz::cli
