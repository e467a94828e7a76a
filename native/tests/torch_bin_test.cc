// Test for petcore::load_torch_bin (native/core/io/torch_bin.cc).
//
// Usage: torch_bin_test [fixture_dir]
//   fixture_dir defaults to test/fixtures/tiny-bert-bin relative to the current
//   directory, else relative to this source file's repository. Scratch files go
//   to the system temp directory. Returns non-zero on failure.
//
// Checks:
//  * the tiny-bert-bin fixture loads: every name (in file order), dtype, shape,
//    sum and position-weighted sum matches expected.json (written by
//    scripts/make-bin-fixture.py with torch);
//  * shared storages / offsets / transposed views come out right and own
//    their memory;
//  * broken inputs (truncated copies, non-zip, legacy pickle, missing file,
//    hand-made archives with a bad opcode, a forbidden global, a wrong numel,
//    a missing record, an out-of-range view, a truncated pickle) all throw
//    std::runtime_error naming the file, instead of aborting;
//  * 600 copies of the fixture with 1 to 4 random bytes changed (fixed seed) in its pickle or its zip directory
//    each load or throw std::runtime_error.

#include "io/torch_bin.h"

#include <caffe2/serialize/inline_container.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

int g_failures = 0;
int g_checks = 0;

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::cout << "FAIL: " << what << "\n";
  }
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

at::ScalarType dtype_from_name(const std::string& s) {
  if (s == "float32") return at::kFloat;
  if (s == "float16") return at::kHalf;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "float64") return at::kDouble;
  if (s == "int64") return at::kLong;
  if (s == "int32") return at::kInt;
  if (s == "int16") return at::kShort;
  if (s == "int8") return at::kChar;
  if (s == "uint8") return at::kByte;
  if (s == "bool") return at::kBool;
  return at::ScalarType::Undefined;
}

bool close(double got, double want) { return std::fabs(got - want) <= 1e-3 * std::fabs(want) + 1e-6; }

// Expects load_torch_bin(path) to throw std::runtime_error whose message
// contains the path and every string in `needles`.
void expect_error(const std::string& label, const std::string& path, const std::vector<std::string>& needles) {
  try {
    auto sd = petcore::load_torch_bin(path);
    check(false, label + ": expected an exception, got " + std::to_string(sd.size()) + " tensors");
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    bool ok = msg.find(path) != std::string::npos;
    for (const auto& n : needles) ok = ok && msg.find(n) != std::string::npos;
    check(ok, label + ": message lacks path or one of the expected words: " + msg);
    if (ok) std::cout << "  ok  " << label << " -> " << msg.substr(0, 300) << "\n";
  } catch (const std::exception& e) {
    check(false, label + ": threw a non-runtime_error: " + e.what());
  } catch (...) {
    check(false, label + ": threw something that is not a std::exception");
  }
}

// --- tiny pickle builder for hand-made archives ------------------------------

struct Pickle {
  std::string b = "\x80\x02";  // PROTO 2
  Pickle& op(char c) {
    b.push_back(c);
    return *this;
  }
  Pickle& raw(const std::string& s) {
    b += s;
    return *this;
  }
  Pickle& str(const std::string& s) {  // BINUNICODE
    b.push_back('X');
    uint32_t n = static_cast<uint32_t>(s.size());
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    b += s;
    return *this;
  }
  Pickle& sstr(const std::string& s) {  // SHORT_BINUNICODE
    b.push_back('\x8c');
    b.push_back(static_cast<char>(s.size()));
    b += s;
    return *this;
  }
  Pickle& int1(int v) {  // BININT1
    b.push_back('K');
    b.push_back(static_cast<char>(v));
    return *this;
  }
  Pickle& global(const std::string& m, const std::string& n) { return raw("c" + m + "\n" + n + "\n"); }
};

// {'w': tensor(storage '0' of `storage_numel` floats, size (n,), stride (1,))}
std::string tensor_dict_pickle(int storage_numel, int n, bool with_stop = true) {
  Pickle p;
  p.op('}').raw(std::string("q\x00", 2)).op('(');
  p.str("w");
  p.global("torch._utils", "_rebuild_tensor_v2");
  p.op('(');
  p.op('(').sstr("storage").global("torch", "FloatStorage").str("0").str("cpu").int1(storage_numel).op('t');
  p.op('Q');
  p.int1(0);                                               // storage_offset
  p.int1(n).op('\x85');                                    // size (n,)
  p.int1(1).op('\x85');                                    // stride (1,)
  p.op('\x89');                                            // requires_grad False
  p.global("collections", "OrderedDict").op(')').op('R');  // backward_hooks
  p.op('t').op('R');
  p.op('u');
  if (with_stop) p.op('.');
  return p.b;
}

void write_archive(const std::string& path, const std::string& pkl,
                   const std::vector<std::pair<std::string, std::string>>& records) {
  caffe2::serialize::PyTorchStreamWriter w(path);
  w.writeRecord("data.pkl", pkl.data(), pkl.size());
  for (const auto& r : records) w.writeRecord(r.first, r.second.data(), r.second.size());
  w.writeEndOfFile();
}

std::string floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::string dir = "test/fixtures/tiny-bert-bin";
  if (argc > 1) {
    dir = argv[1];
  } else if (!fs::exists(dir)) {
    fs::path alt = fs::path(__FILE__).parent_path() / ".." / ".." / "test" / "fixtures" / "tiny-bert-bin";
    if (fs::exists(alt)) dir = alt.lexically_normal().string();
  }
  const std::string bin = dir + "/pytorch_model.bin";
  const std::string tmp =
      (fs::temp_directory_path() / ("torch_bin_test." + std::to_string(std::random_device{}()))).string();

  // ---- 1. the fixture ------------------------------------------------------
  std::cout << "loading " << bin << "\n";
  std::vector<std::pair<std::string, at::Tensor>> sd;
  try {
    sd = petcore::load_torch_bin(bin);
  } catch (const std::exception& e) {
    std::cout << "FAIL: loading the fixture threw: " << e.what() << "\n";
    return 1;
  }
  nlohmann::json expected;
  try {
    expected = nlohmann::json::parse(read_file(dir + "/expected.json"));
  } catch (const std::exception& e) {
    std::cout << "FAIL: cannot parse " << dir << "/expected.json: " << e.what() << "\n";
    return 1;
  }
  const auto& exp = expected.at("tensors");
  check(sd.size() == exp.size(),
        "tensor count " + std::to_string(sd.size()) + " != expected " + std::to_string(exp.size()));
  for (size_t i = 0; i < sd.size() && i < exp.size(); ++i) {
    const auto& e = exp[i];
    const std::string name = e.at("name");
    const at::Tensor& t = sd[i].second;
    check(sd[i].first == name, "entry " + std::to_string(i) + " is '" + sd[i].first + "', expected '" + name + "'");
    check(t.scalar_type() == dtype_from_name(e.at("dtype")), name + ": dtype " + c10::toString(t.scalar_type()));
    check(t.device().is_cpu(), name + ": not on CPU");
    check(t.is_contiguous(), name + ": not contiguous");
    std::vector<int64_t> shape = e.at("shape").get<std::vector<int64_t>>();
    check(t.sizes().vec() == shape, name + ": shape mismatch");
    at::Tensor flat = t.reshape({-1}).to(at::kDouble).contiguous();
    const double* p = flat.data_ptr<double>();
    double sum = 0, wsum = 0;
    for (int64_t k = 0; k < flat.numel(); ++k) {
      sum += p[k];
      wsum += p[k] * static_cast<double>(k % 13 + 1);
    }
    check(close(sum, e.at("sum")),
          name + ": sum " + std::to_string(sum) + " != " + std::to_string(e.at("sum").get<double>()));
    check(close(wsum, e.at("wsum")),
          name + ": wsum " + std::to_string(wsum) + " != " + std::to_string(e.at("wsum").get<double>()));
  }
  std::cout << "  ok  " << sd.size()
            << " tensors: names (in file order), dtypes, shapes, sums and weighted sums match expected.json\n";

  // Tied / shared-storage tensors: equal values, separate memory.
  auto find = [&](const std::string& n) -> at::Tensor {
    for (auto& kv : sd)
      if (kv.first == n) return kv.second;
    return at::Tensor();
  };
  at::Tensor we = find("bert.embeddings.word_embeddings.weight");
  at::Tensor dec = find("cls.predictions.decoder.weight");
  check(we.defined() && dec.defined() && at::equal(we, dec), "decoder.weight != word_embeddings.weight");
  check(we.defined() && dec.defined() && we.data_ptr() != dec.data_ptr(), "tied tensors should own separate memory");
  check(find("bert.embeddings.LayerNorm.gamma").defined() && find("bert.embeddings.LayerNorm.beta").defined(),
        "legacy LayerNorm.gamma/beta names missing");
  std::cout << "  ok  tied decoder weight equals word embeddings (own memory); legacy gamma/beta names present\n";

  // ---- 2. broken inputs ----------------------------------------------------
  const std::string data = read_file(bin);
  struct Cut {
    const char* label;
    size_t keep;
  };
  const Cut cuts[] = {
      {"truncated to half", data.size() / 2},
      {"truncated by 1 byte", data.size() - 1},
      {"truncated to 100 bytes", 100},
      {"truncated to 3 bytes", 3},
  };
  for (const Cut& c : cuts) {
    const std::string p = tmp + ".truncated.bin";
    write_file(p, data.substr(0, c.keep));
    expect_error(c.label, p, {});
    std::remove(p.c_str());
  }

  {
    const std::string p = tmp + ".notzip.bin";
    write_file(p, "this is not a checkpoint\n");
    expect_error("non-zip file", p, {"not a PyTorch zip"});
    write_file(p, "");
    expect_error("empty file", p, {"empty"});
    // Start of a torch < 1.6 checkpoint: pickled magic number 0x1950a86a20f9469cfc6c.
    write_file(p, std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e\x80\x02", 17));
    expect_error("legacy (pre-1.6) format", p, {"legacy", "safetensors"});
    std::remove(p.c_str());
    expect_error("missing file", tmp + ".does-not-exist.bin", {"cannot open"});
  }

  // ---- 3. hand-made archives -------------------------------------------------
  {
    const std::string p = tmp + ".handmade.bin";
    // Sanity: the builder makes a valid archive.
    write_archive(p, tensor_dict_pickle(4, 4), {{"data/0", floats({1, 2, 3, 4})}});
    try {
      auto r = petcore::load_torch_bin(p);
      check(r.size() == 1 && r[0].first == "w" && r[0].second.numel() == 4 && r[0].second.sum().item<float>() == 10.0f,
            "hand-made archive: wrong content");
      std::cout << "  ok  hand-made archive loads ({'w': [1,2,3,4]})\n";
    } catch (const std::exception& e) {
      check(false, std::string("hand-made archive should load: ") + e.what());
    }

    write_archive(p, tensor_dict_pickle(4, 4), {{"data/0", floats({1, 2, 3})}});
    expect_error("storage record too short (wrong numel)", p, {"data/0", "12 bytes"});

    write_archive(p, tensor_dict_pickle(4, 4), {});
    expect_error("missing storage record", p, {"data/0"});

    write_archive(p, tensor_dict_pickle(4, 5), {{"data/0", floats({1, 2, 3, 4})}});
    expect_error("view beyond storage", p, {"storage"});

    write_archive(p, tensor_dict_pickle(4, 4, /*with_stop=*/false), {{"data/0", floats({1, 2, 3, 4})}});
    expect_error("pickle without STOP", p, {"truncated"});

    write_archive(p, std::string("\x80\x02}I42\n.", 8), {});
    expect_error("unsupported opcode", p, {"opcode 0x49", "offset 3"});

    write_archive(p, Pickle().global("posix", "system").raw(std::string("X\x02\x00\x00\x00ls\x85R.", 10)).b, {});
    expect_error("forbidden global", p, {"posix.system"});

    write_archive(p, Pickle().op('}').raw(std::string("X\x02\x00\x00\x00\xff\xfe", 7)).b, {});
    expect_error("invalid UTF-8 string", p, {"UTF-8"});

    write_archive(p, Pickle().op(']').op('.').b, {});
    expect_error("top level not a dict", p, {"list"});

    std::remove(p.c_str());
  }

  // ---- 4. mutated copies -----------------------------------------------------
  // 1 to 4 bytes changed at random (fixed seed) in the zip's opening (its first header and data.pkl, the pickle the
  // reader interprets) or its end (the central directory): each copy loads or throws std::runtime_error, never
  // aborts. A signal ends the test, which CI reads as a failure.
  {
    const std::string p = tmp + ".mutated.bin";
    std::mt19937 rng(20261208);
    const size_t head = std::min<size_t>(data.size(), 8192), tail = std::min<size_t>(data.size(), 8192);
    int loaded = 0, refused = 0, other = 0;
    for (int i = 0; i < 600; ++i) {
      std::string b = data;
      const bool at_end = i % 3 == 2;
      for (unsigned k = 0, n = 1 + rng() % 4; k < n; ++k) {
        const size_t pos = at_end ? data.size() - 1 - rng() % tail : rng() % head;
        switch (rng() % 3) {
          case 0: b[pos] = static_cast<char>(rng()); break;
          case 1: b[pos] = static_cast<char>(b[pos] ^ (1 << (rng() % 8))); break;
          default: b[pos] = "\x00\xff\x7f\x80\x01"[rng() % 5];
        }
      }
      write_file(p, b);
      try {
        petcore::load_torch_bin(p);
        ++loaded;
      } catch (const std::runtime_error&) {
        ++refused;
      } catch (...) {
        ++other;
      }
    }
    std::remove(p.c_str());
    check(other == 0 && refused > 0,
          std::to_string(other) + " of 600 mutated copies threw something other than std::runtime_error");
    std::cout << "  ok  600 mutated copies: " << loaded << " load, " << refused << " refused, " << other
              << " otherwise\n";
  }

  std::cout << (g_failures ? "FAILED: " : "PASSED: ") << g_checks - g_failures << "/" << g_checks << " checks passed\n";
  return g_failures ? 1 : 0;
}
