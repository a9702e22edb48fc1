// Unit tests of the tokenizer pieces: UTF-8 helpers, the bloom pre-tokenizer, BPE over small
// in-memory vocabularies, special tokens, invalid UTF-8, the streaming decoder, and the load time
// of a vocabulary of the real size.
#include <gtest/gtest.h>

#include <time.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "bloomz/error.hpp"
#include "bloomz/gguf.hpp"
#include "bloomz/tokenizer.hpp"
#include "pretokenize.hpp"
#include "support/gguf_builder.hpp"
#include "unicode.hpp"

namespace bloomz {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(std::string_view text) {
  Pieces out;
  for (std::string_view p : pretokenize_bloom(text)) out.emplace_back(p);
  return out;
}

// ---------------------------------------------------------------- unicode

TEST(Unicode, ByteToUnicodeTable) {
  const auto& t = unicode::byte_to_cp();
  EXPECT_EQ(t[0x00], 0x100u);
  EXPECT_EQ(t[0x0A], 0x10Au);
  EXPECT_EQ(t[0x20], 0x120u);
  EXPECT_EQ(t[0x21], 0x21u);
  EXPECT_EQ(t[0x7E], 0x7Eu);
  EXPECT_EQ(t[0x7F], 0x121u);
  EXPECT_EQ(t[0x80], 0x122u);
  EXPECT_EQ(t[0xA0], 0x142u);
  EXPECT_EQ(t[0xA1], 0xA1u);
  EXPECT_EQ(t[0xAD], 0x143u);
  EXPECT_EQ(t[0xFF], 0xFFu);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(unicode::cp_to_byte(t[static_cast<size_t>(b)]), b);
  EXPECT_EQ(unicode::cp_to_byte(0x20), -1);
  EXPECT_EQ(unicode::cp_to_byte(0x144), -1);
  EXPECT_EQ(unicode::cp_to_byte(0x4E00), -1);
}

TEST(Unicode, LenientDecoderMatchesLlama) {
  // Overlong and surrogate forms decode; truncated/stray bytes do not.
  auto dec = [](std::string s) {
    std::vector<uint32_t> cps;
    size_t pos = 0;
    while (pos < s.size()) {
      uint32_t cp = 0;
      const size_t start = pos;
      if (!unicode::decode_lenient(s, pos, cp)) {
        cp = unicode::kReplacement;
        pos = start + 1;
      }
      cps.push_back(cp);
    }
    return cps;
  };
  EXPECT_EQ(dec("a\xC3\xA9"), (std::vector<uint32_t>{'a', 0xE9}));
  EXPECT_EQ(dec("\xC0\x80"), (std::vector<uint32_t>{0}));             // overlong NUL
  EXPECT_EQ(dec("\xED\xA0\x80"), (std::vector<uint32_t>{0xD800}));    // surrogate
  EXPECT_EQ(dec("\xE4\xB8"), (std::vector<uint32_t>{0xFFFD, 0xFFFD}));  // truncated
  EXPECT_EQ(dec("\x80x"), (std::vector<uint32_t>{0xFFFD, 'x'}));
  EXPECT_EQ(dec("\xFF"), (std::vector<uint32_t>{0xFFFD}));
  EXPECT_EQ(dec("\xF7\xBF\xBF\xBF"), (std::vector<uint32_t>{0x1FFFFF}));
}

TEST(Unicode, NormalizeLikeLlama) {
  EXPECT_TRUE(unicode::is_llama_normalized("plain ascii"));
  EXPECT_TRUE(unicode::is_llama_normalized("日本語 😀 é"));
  EXPECT_TRUE(unicode::is_llama_normalized("\xED\xA0\x80"));  // surrogates survive unchanged
  EXPECT_FALSE(unicode::is_llama_normalized("\xC0\x80"));
  EXPECT_FALSE(unicode::is_llama_normalized("\xE4\xB8"));
  EXPECT_FALSE(unicode::is_llama_normalized("\xFF"));
  EXPECT_EQ(unicode::normalize_llama("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(unicode::normalize_llama("\xC0\x80"), std::string(1, '\0'));
  EXPECT_EQ(unicode::normalize_llama("\xE4\xB8"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_THROW(unicode::normalize_llama("\xF5\x80\x80\x80"), Error);
  EXPECT_THROW(unicode::normalize_llama("\xF4\x90\x80\x80"), Error);
}

TEST(Unicode, WhitespaceSet) {
  for (uint32_t cp : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u,
                      0x2005u, 0x200Au, 0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u})
    EXPECT_TRUE(unicode::is_llama_whitespace(cp)) << std::hex << cp;
  for (uint32_t cp : {0x08u, 0x1Cu, 0x1Fu, 0x21u, 0x84u, 0x180Eu, 0x200Bu, 0x200Cu, 0xFEFFu,
                      0x2030u, 0x3001u})
    EXPECT_FALSE(unicode::is_llama_whitespace(cp)) << std::hex << cp;
}

TEST(Unicode, Sanitize) {
  EXPECT_TRUE(unicode::is_valid_utf8("日本語 😀"));
  EXPECT_FALSE(unicode::is_valid_utf8("\xED\xA0\x80"));
  EXPECT_EQ(unicode::sanitize_utf8("ok"), "ok");
  EXPECT_EQ(unicode::sanitize_utf8("a\xE4\xB8" "b"), "a\xEF\xBF\xBD" "b");  // one U+FFFD per maximal subpart
  EXPECT_EQ(unicode::sanitize_utf8("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

// ---------------------------------------------------------------- pre-tokenizer

TEST(Pretokenize, DocumentedExamples) {
  EXPECT_EQ(split("Hello,  world!\n"), (Pieces{"Hello", ", ", " world", "!\n"}));
  EXPECT_EQ(split("a  b"), (Pieces{"a", " ", " b"}));
  EXPECT_EQ(split("f(x) = y|z"), (Pieces{"f", "(", "x", ")", " =", " y", "|", "z"}));
  EXPECT_EQ(split("  leading"), (Pieces{" ", " leading"}));
  EXPECT_EQ(split("¿Qué tal? 你好，世界。"),
            (Pieces{"¿Qué", " tal", "?", " 你好", "，", "世界", "。"}));
}

TEST(Pretokenize, EmptyAndTrivial) {
  EXPECT_EQ(split(""), Pieces{});
  EXPECT_EQ(split(" "), Pieces{" "});
  EXPECT_EQ(split("a"), Pieces{"a"});
  EXPECT_EQ(split(" a"), Pieces{" a"});
  EXPECT_EQ(split("a "), (Pieces{"a", " "}));
}

TEST(Pretokenize, Latin) {
  EXPECT_EQ(split("The quick brown fox"), (Pieces{"The", " quick", " brown", " fox"}));
  EXPECT_EQ(split("don't stop-me; now"), (Pieces{"don't", " stop-me;", " now"}));
  EXPECT_EQ(split("Ça va? Très bien."), (Pieces{"Ça", " va", "?", " Très", " bien", "."}));
  EXPECT_EQ(split("3.14159"), (Pieces{"3", ".", "14159"}));
  EXPECT_EQ(split("1,000,000"), (Pieces{"1", ",", "000", ",", "000"}));
}

TEST(Pretokenize, CJK) {
  EXPECT_EQ(split("日本語のテキスト"), Pieces{"日本語のテキスト"});
  EXPECT_EQ(split("中文，标点。"), (Pieces{"中文", "，", "标点", "。"}));
  EXPECT_EQ(split("一、二、三"), (Pieces{"一", "、", "二", "、", "三"}));
  EXPECT_EQ(split("한국어 텍스트"), (Pieces{"한국어", " 텍스트"}));
  // U+3000 IDEOGRAPHIC SPACE is whitespace; U+FF01 FULLWIDTH ! is not in the class.
  EXPECT_EQ(split("你好　世界！"), (Pieces{"你好", "　", "世界！"}));
}

TEST(Pretokenize, Devanagari) {
  EXPECT_EQ(split("नमस्ते दुनिया। ठीक"), (Pieces{"नमस्ते", " दुनिया", "।", " ठीक"}));
  EXPECT_EQ(split("हिन्दी।"), (Pieces{"हिन्दी", "।"}));
  // U+0965 DOUBLE DANDA is not in the class.
  EXPECT_EQ(split("क॥ख"), Pieces{"क॥ख"});
}

TEST(Pretokenize, Arabic) {
  EXPECT_EQ(split("مرحبا، عالم۔"), (Pieces{"مرحبا", "،", " عالم", "۔"}));
  EXPECT_EQ(split("اردو۔"), (Pieces{"اردو", "۔"}));
  // U+061F ARABIC QUESTION MARK is not in the class.
  EXPECT_EQ(split("كيف؟ حالك"), (Pieces{"كيف؟", " حالك"}));
}

TEST(Pretokenize, Tamil) {
  EXPECT_EQ(split("வணக்கம் உலகம்"), (Pieces{"வணக்கம்", " உலகம்"}));
  EXPECT_EQ(split("தமிழ்.நாடு"), (Pieces{"தமிழ்", ".", "நாடு"}));
}

TEST(Pretokenize, Emoji) {
  EXPECT_EQ(split("hi 😀🚀!"), (Pieces{"hi", " 😀🚀", "!"}));
  EXPECT_EQ(split("👍🏽 ok"), (Pieces{"👍🏽", " ok"}));
  EXPECT_EQ(split("a\u200Db"), Pieces{"a\u200Db"});  // ZWJ is not whitespace
}

TEST(Pretokenize, WhitespaceRuns) {
  EXPECT_EQ(split("a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(split("a \t b"), (Pieces{"a", " \t", " b"}));
  EXPECT_EQ(split("a\t\tb"), (Pieces{"a", "\t\t", "b"}));
  EXPECT_EQ(split("   "), Pieces{"   "});
  EXPECT_EQ(split("a\v\fb"), (Pieces{"a", "\v\f", "b"}));
  // NBSP, NEL, U+2028, U+2003 EM SPACE and U+3000 are whitespace for llama.cpp.
  EXPECT_EQ(split("a\u00A0b"), (Pieces{"a", "\u00A0", "b"}));
  EXPECT_EQ(split(" \u00A0b"), (Pieces{" \u00A0", "b"}));
  EXPECT_EQ(split("\u00A0nbsp"), (Pieces{"\u00A0", "nbsp"}));
  EXPECT_EQ(split("a\u0085b"), (Pieces{"a", "\u0085", "b"}));
  EXPECT_EQ(split("a\u2028b\u2003c"), (Pieces{"a", "\u2028", "b", "\u2003", "c"}));
  EXPECT_EQ(split("\u3000ideographic space"), (Pieces{"\u3000", "ideographic", " space"}));
  // Not whitespace: U+200B ZERO WIDTH SPACE, U+FEFF, and ASCII 0x1C..0x1F (not isspace).
  EXPECT_EQ(split("a\u200Bb\uFEFFc"), Pieces{"a\u200Bb\uFEFFc"});
  EXPECT_EQ(split("a\x1C\x1F" "b"), Pieces{"a\x1C\x1F" "b"});
}

TEST(Pretokenize, Newlines) {
  EXPECT_EQ(split("line1\nline2\n"), (Pieces{"line1", "\n", "line2", "\n"}));
  EXPECT_EQ(split("a\r\n\r\nb"), (Pieces{"a", "\r\n\r\n", "b"}));
  EXPECT_EQ(split("\n\n  x"), (Pieces{"\n\n ", " x"}));
  EXPECT_EQ(split(" \n "), Pieces{" \n "});
  EXPECT_EQ(split("tabs\tand\nnewlines\r\n"),
            (Pieces{"tabs", "\t", "and", "\n", "newlines", "\r\n"}));
}

TEST(Pretokenize, PunctuationOfTheClass) {
  // ( | . , ! ? ) … 。 ， 、 । ۔ ، are excluded; the gap between matches is one piece.
  EXPECT_EQ(split("(parenthesis)"), (Pieces{"(", "parenthesis", ")"}));
  EXPECT_EQ(split("a|b"), (Pieces{"a", "|", "b"}));
  EXPECT_EQ(split("...?!"), Pieces{"...?!"});
  EXPECT_EQ(split("wait… what"), (Pieces{"wait", "…", " what"}));
  EXPECT_EQ(split("x ,y"), (Pieces{"x", " ,", "y"}));
  EXPECT_EQ(split("Hi!! (ok)"), (Pieces{"Hi", "!! (", "ok", ")"}));
  // Other punctuation is part of words.
  EXPECT_EQ(split("[a]{b};c:d\"e'f-g_h/i\\j"), Pieces{"[a]{b};c:d\"e'f-g_h/i\\j"});
  EXPECT_EQ(split("x = [1, 2]"), (Pieces{"x", " =", " [1", ",", " 2]"}));
}

TEST(Pretokenize, PiecesCoverTheText) {
  std::mt19937 rng(42);
  const std::vector<std::string> alphabet = {"a", "Z", " ", "  ", "\n", "\t", ".", ",", "!", "(",
                                             "|", "…", "。", "é", "日", "😀", "\u00A0", "\u3000",
                                             "-", "'", "।", "،"};
  for (int iter = 0; iter < 500; ++iter) {
    std::string s;
    const int n = static_cast<int>(rng() % 30);
    for (int i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
    std::string joined;
    for (std::string_view p : pretokenize_bloom(s)) {
      EXPECT_FALSE(p.empty());
      joined += p;
    }
    EXPECT_EQ(joined, s);
  }
}

// ---------------------------------------------------------------- BPE on a small vocabulary

// Byte-level form of raw bytes.
std::string bl(std::string_view raw) {
  std::string out;
  for (char c : raw) unicode::append_utf8(out, unicode::byte_to_cp()[static_cast<unsigned char>(c)]);
  return out;
}

struct SmallVocab {
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
  Tokenizer build(int32_t eos = -1) const {
    VocabData d;
    for (const auto& t : tokens) d.tokens.push_back(t);
    for (const auto& m : merges) d.merges.push_back(m);
    d.token_types = types;
    d.eos_id = eos;
    return Tokenizer::from_vocab(d);
  }
};

// 4 control tokens, the 256 byte tokens (ids 4..259), then the given extra tokens.
SmallVocab small_vocab(const std::vector<std::string>& extra, const std::vector<std::string>& merges) {
  SmallVocab v;
  v.tokens = {"<unk>", "<s>", "</s>", "<pad>"};
  v.types = {3, 3, 3, 3};
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(bl(std::string(1, static_cast<char>(b))));
    v.types.push_back(1);
  }
  for (const auto& e : extra) {
    v.tokens.push_back(bl(e));
    v.types.push_back(1);
  }
  for (const auto& m : merges) {
    const size_t sp = m.find(' ', 1);
    v.merges.push_back(bl(m.substr(0, sp)) + " " + bl(m.substr(sp + 1)));
  }
  return v;
}

int32_t byte_id(char c) { return 4 + static_cast<unsigned char>(c); }

TEST(Bpe, MergesByRank) {
  // "b c" outranks "a b": abc -> a + bc -> abc only if "a bc" exists.
  auto v = small_vocab({"ab", "bc", "abc"}, {"b c", "a b", "a bc"});
  Tokenizer t = v.build();
  const int32_t ab = 260, bc = 261, abc = 262;
  EXPECT_EQ(t.encode("abc", false), (std::vector<int32_t>{abc}));
  EXPECT_EQ(t.encode("ab", false), (std::vector<int32_t>{ab}));
  EXPECT_EQ(t.encode("bcb", false), (std::vector<int32_t>{bc, byte_id('b')}));
  // Without "a bc", "abc" stops at a + bc even though "ab c" would exist later.
  auto v2 = small_vocab({"ab", "bc", "abc"}, {"b c", "a b", "ab c"});
  Tokenizer t2 = v2.build();
  EXPECT_EQ(t2.encode("abc", false), (std::vector<int32_t>{byte_id('a'), bc}));
}

TEST(Bpe, LeftmostFirstOnTies) {
  auto v = small_vocab({"aa"}, {"a a"});
  Tokenizer t = v.build();
  const int32_t aa = 260;
  EXPECT_EQ(t.encode("aaa", false), (std::vector<int32_t>{aa, byte_id('a')}));
  EXPECT_EQ(t.encode("aaaaa", false), (std::vector<int32_t>{aa, aa, byte_id('a')}));
  auto v2 = small_vocab({"aa", "aaaa"}, {"a a", "aa aa"});
  Tokenizer t2 = v2.build();
  EXPECT_EQ(t2.encode("aaaaaaa", false), (std::vector<int32_t>{261, 260, byte_id('a')}));
}

TEST(Bpe, MergesNeverCrossPieces) {
  auto v = small_vocab({" a", "a "}, {"a  ", "  a"});
  Tokenizer t = v.build();
  // "a a" -> pieces "a", " a": "a " may never form.
  EXPECT_EQ(t.encode("a a", false), (std::vector<int32_t>{byte_id('a'), 260}));
}

TEST(Bpe, MergeResultNotInVocabularyFallsBackToBytes) {
  // "x y" makes "xy", which is not a token; llama.cpp then looks up each byte of the byte-level
  // text as a one-byte token. "xy z" still applies to the virtual "xy".
  auto v = small_vocab({"xyz"}, {"x y", "xy z"});
  Tokenizer t = v.build();
  EXPECT_EQ(t.encode("xyz", false), (std::vector<int32_t>{260}));
  EXPECT_EQ(t.encode("xy", false), (std::vector<int32_t>{byte_id('x'), byte_id('y')}));
}

TEST(Bpe, DuplicateMergesAndTokens) {
  // The first occurrence of a merge keeps its rank; the last token with a text wins.
  auto v = small_vocab({"ab", "bc"}, {"b c", "a b", "b c"});
  v.tokens.push_back(bl("bc"));
  v.types.push_back(1);
  Tokenizer t = v.build();
  EXPECT_EQ(t.encode("abc", false), (std::vector<int32_t>{byte_id('a'), 262}));
  EXPECT_EQ(t.n_merges(), 2u);
}

TEST(Special, ParseSpecial) {
  auto v = small_vocab({}, {});
  Tokenizer t = v.build(2);
  const std::vector<int32_t> as_text = t.encode("</s>", false);
  EXPECT_EQ(as_text, (std::vector<int32_t>{byte_id('<'), byte_id('/'), byte_id('s'), byte_id('>')}));
  EXPECT_EQ(t.encode("</s>", true), (std::vector<int32_t>{2}));
  EXPECT_EQ(t.encode("x<s>y</s><pad><unk>", true),
            (std::vector<int32_t>{byte_id('x'), 1, byte_id('y'), 2, 3, 0}));
  EXPECT_EQ(t.encode("<s><s>", true), (std::vector<int32_t>{1, 1}));
  // The pre-tokenizer runs per fragment: " a" after a special keeps its space.
  EXPECT_EQ(t.encode("<s> ", true), (std::vector<int32_t>{1, byte_id(' ')}));
  EXPECT_TRUE(t.is_eog(2));
  EXPECT_FALSE(t.is_eog(1));
  EXPECT_EQ(t.token_to_piece(2), "");
  EXPECT_EQ(t.token_to_piece(2, true), "</s>");
  EXPECT_EQ(t.decode(std::vector<int32_t>{1, byte_id('h'), 2}, false), "h");
  EXPECT_EQ(t.decode(std::vector<int32_t>{1, byte_id('h'), 2}, true), "<s>h</s>");
}

TEST(Special, UserDefinedAlwaysSplit) {
  auto v = small_vocab({}, {});
  v.tokens.push_back("<tool>");
  v.types.push_back(4);
  Tokenizer t = v.build();
  EXPECT_EQ(t.encode("a<tool>b", false), (std::vector<int32_t>{byte_id('a'), 260, byte_id('b')}));
  EXPECT_EQ(t.token_to_piece(260), "<tool>");
}

TEST(Decode, PiecesAndTypes) {
  auto v = small_vocab({"he", "llo"}, {"h e", "l l", "ll o"});
  v.tokens.push_back("[PAD1]");
  v.types.push_back(5);
  Tokenizer t = v.build();
  EXPECT_EQ(t.token_to_piece(byte_id(' ')), " ");
  EXPECT_EQ(t.token_to_piece(byte_id('\n')), "\n");
  EXPECT_EQ(t.token_to_piece(byte_id('\xE4')), "\xE4");
  EXPECT_EQ(t.token_to_piece(262), "");  // UNUSED
  EXPECT_EQ(t.token_to_piece(262, true), "");
  EXPECT_THROW(t.token_to_piece(263), Error);
  EXPECT_THROW(t.token_to_piece(-1), Error);
}

TEST(InvalidUtf8, LikeLlama) {
  auto v = small_vocab({}, {});
  Tokenizer t = v.build();
  // A stray byte becomes U+FFFD (EF BF BD), one per byte.
  EXPECT_EQ(t.encode("a\xFF", false),
            (std::vector<int32_t>{byte_id('a'), byte_id('\xEF'), byte_id('\xBF'), byte_id('\xBD')}));
  // Truncated sequence: two replacement characters.
  EXPECT_EQ(t.encode("\xE4\xB8", false).size(), 6u);
  // Overlong NUL becomes a real NUL.
  EXPECT_EQ(t.encode("\xC0\x80", false), (std::vector<int32_t>{byte_id('\0')}));
  // Above U+10FFFF: llama.cpp throws; so do we.
  EXPECT_THROW(t.encode("\xF5\x80\x80\x80", false), Error);
  // Specials are split out before decoding: the bad byte stays in its fragment.
  EXPECT_EQ(t.encode("\xFF</s>", true),
            (std::vector<int32_t>{byte_id('\xEF'), byte_id('\xBF'), byte_id('\xBD'), 2}));
}

TEST(Validation, BadVocabularies) {
  auto v = small_vocab({}, {});
  v.merges.push_back("nospace");
  try {
    v.build();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.merges[0]"), std::string::npos) << e.what();
  }
  auto w = small_vocab({}, {});
  w.types.pop_back();
  EXPECT_THROW(w.build(), Error);
  auto x = small_vocab({}, {});
  x.types[7] = 9;
  try {
    x.build();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.token_type[7]"), std::string::npos) << e.what();
  }
  auto y = small_vocab({}, {});
  EXPECT_THROW(y.build(5000), Error);
}

// ---------------------------------------------------------------- streaming decoder

TEST(Streamer, HoldsIncompleteSequences) {
  Utf8Streamer s;
  EXPECT_EQ(s.push("a\xE4"), "a");
  EXPECT_EQ(s.push("\xB8"), "");
  EXPECT_EQ(s.push("\xAD" "b"), "\xE4\xB8\xAD" "b");
  EXPECT_EQ(s.push("\xF0\x9F"), "");
  EXPECT_EQ(s.push("\x98"), "");
  EXPECT_EQ(s.push("\x80"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(s.push("\xC3"), "");
  EXPECT_EQ(s.flush(), "\xC3");
  // Bytes that can never complete pass through at once.
  EXPECT_EQ(s.push("\xFF"), "\xFF");
  EXPECT_EQ(s.push("\x80"), "\x80");
  EXPECT_EQ(s.push("\xE0\x80"), "\xE0\x80");
  EXPECT_EQ(s.flush(), "");
}

TEST(Streamer, RandomChunksOfValidText) {
  const std::string text = "Hé 日本語 😀🚀 हिन्दी اردو ok \xF4\x8F\xBF\xBF!";
  std::mt19937 rng(7);
  for (int iter = 0; iter < 300; ++iter) {
    Utf8Streamer s;
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t n = std::min<size_t>(text.size() - pos, 1 + rng() % 5);
      const std::string chunk = s.push(std::string_view(text).substr(pos, n));
      EXPECT_TRUE(unicode::is_valid_utf8(chunk));
      out += chunk;
      pos += n;
    }
    out += s.flush();
    EXPECT_EQ(out, text);
  }
}

// ---------------------------------------------------------------- real-size vocabulary

TEST(LoadTime, RealSizeVocabularyUnder100ms) {
  // 250 880 tokens and 250 000 merges in byte-level form, written as a GGUF and parsed.
  constexpr int kTokens = 250880, kMerges = 250000;
  std::vector<std::string> tokens;
  tokens.reserve(kTokens);
  std::vector<int32_t> types;
  types.reserve(kTokens);
  for (const char* s : {"<unk>", "<s>", "</s>", "<pad>"}) {
    tokens.emplace_back(s);
    types.push_back(3);
  }
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(bl(std::string(1, static_cast<char>(b))));
    types.push_back(1);
  }
  std::vector<std::string> merges;
  merges.reserve(kMerges);
  std::mt19937 rng(1);
  // Each merge joins two existing tokens into a new one (like a trained vocabulary).
  while (static_cast<int>(merges.size()) < kMerges) {
    const size_t a = 4 + rng() % (tokens.size() - 4), b = 4 + rng() % (tokens.size() - 4);
    if (tokens[a].size() + tokens[b].size() > 24) continue;
    std::string joined = tokens[a] + tokens[b];
    merges.push_back(tokens[a] + " " + tokens[b]);
    if (static_cast<int>(tokens.size()) < kTokens - 200) {
      tokens.push_back(std::move(joined));
      types.push_back(1);
    }
  }
  while (static_cast<int>(tokens.size()) < kTokens) {
    tokens.push_back("[PAD" + std::to_string(tokens.size()) + "]");
    types.push_back(5);
  }
  test::GgufBuilder g;
  g.kv_string("general.architecture", "bloom");
  g.kv_string("tokenizer.ggml.model", "gpt2");
  g.kv_string("tokenizer.ggml.pre", "bloom");
  g.kv_string_array("tokenizer.ggml.tokens", tokens);
  g.kv_i32_array("tokenizer.ggml.token_type", types);
  g.kv_string_array("tokenizer.ggml.merges", merges);
  g.kv_u32("tokenizer.ggml.bos_token_id", 1);
  g.kv_u32("tokenizer.ggml.eos_token_id", 2);
  g.kv_u32("tokenizer.ggml.unknown_token_id", 0);
  g.kv_u32("tokenizer.ggml.padding_token_id", 3);
  const std::vector<uint8_t> bytes = g.build();
  const auto span = std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size());

  // Thread CPU time is what is checked (the machine is shared); wall time is printed too.
  const auto cpu_ms = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
  };
  double best_tok = 1e9, best_parse = 1e9, best_wall = 1e9;
  for (int rep = 0; rep < 3; ++rep) {
    const auto w0 = std::chrono::steady_clock::now();
    const double c0 = cpu_ms();
    GgufFile f = GgufFile::parse(span, "synthetic.gguf");
    const double c1 = cpu_ms();
    Tokenizer t = Tokenizer::from_gguf(f);
    const double c2 = cpu_ms();
    best_wall = std::min(best_wall, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count());
    best_parse = std::min(best_parse, c1 - c0);
    best_tok = std::min(best_tok, c2 - c1);
    EXPECT_EQ(t.n_vocab(), kTokens);
    EXPECT_EQ(t.eos_id(), 2);
  }
  std::printf("[ perf     ] real-size vocabulary (%d tokens, %d merges): Tokenizer::from_gguf %.1f ms CPU, "
              "GgufFile::parse %.1f ms CPU, together %.1f ms wall\n",
              kTokens, kMerges, best_tok, best_parse, best_wall);
  RecordProperty("tokenizer_load_ms", std::to_string(best_tok));
#if defined(__SANITIZE_ADDRESS__) || !defined(NDEBUG)
  GTEST_SKIP() << "timing not checked in debug/sanitizer builds";
#else
  // 100 ms on an idle core (BLOOMZ_PERF_STRICT=1 checks it); ctest runs tests side by side.
  const char* strict = std::getenv("BLOOMZ_PERF_STRICT");
  EXPECT_LT(best_tok, strict != nullptr && *strict == '1' ? 100.0 : 1000.0);
#endif
}

}  // namespace
}  // namespace bloomz
