// CIFAR-10 binary reader on files the test writes, and its errors (no real copy is reachable here).
#include <l2o/core/error.h>
#include <l2o/data/cifar10.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

#include <unistd.h>

using namespace l2o;
namespace fs = std::filesystem;

namespace {
fs::path fresh_dir(const std::string& name) {
  const auto p = fs::temp_directory_path() / ("l2o_cifar10_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// Record r of a file: label (r + seed) % 10, pixel j = (7j + 13r + seed) mod 256.
std::vector<uint8_t> records(int n, int seed) {
  std::vector<uint8_t> b;
  for (int r = 0; r < n; ++r) {
    b.push_back(static_cast<uint8_t>((r + seed) % 10));
    for (int j = 0; j < 3072; ++j) b.push_back(static_cast<uint8_t>((7 * j + 13 * r + seed) % 256));
  }
  return b;
}

void write(const fs::path& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Expected values of record r of a file written with `seed`, decoded independently of the reader.
void expect_record(const data::Split& s, int64_t at, int r, int seed) {
  EXPECT_EQ(s.labels[at].item<int64_t>(), (r + seed) % 10);
  for (int c = 0; c < 3; ++c)
    for (int y : {0, 5, 31})
      for (int x : {0, 17, 31}) {
        const int j = c * 1024 + y * 32 + x;
        EXPECT_FLOAT_EQ(s.images[at][c][y][x].item<float>(), static_cast<float>((7 * j + 13 * r + seed) % 256) / 255.0f)
            << "record " << r << " c " << c << " y " << y << " x " << x;
      }
}
}  // namespace

TEST(Cifar10, ReadsTrainAndTestSplitsExactly) {
  const auto dir = fresh_dir("ok");
  for (int i = 1; i <= 5; ++i) write(dir / ("data_batch_" + std::to_string(i) + ".bin"), records(i, 10 * i));
  write(dir / "test_batch.bin", records(3, 99));

  const auto train = data::read_cifar10_split(dir.string(), true);
  ASSERT_EQ(train.images.sizes(), (std::vector<int64_t>{15, 3, 32, 32}));
  ASSERT_EQ(train.labels.sizes(), (std::vector<int64_t>{15}));
  EXPECT_EQ(train.images.scalar_type(), torch::kFloat);
  EXPECT_EQ(train.labels.scalar_type(), torch::kLong);
  // Files are concatenated in order 1..5: batch i starts at 0+1+…+(i−1).
  int64_t at = 0;
  for (int i = 1; i <= 5; ++i)
    for (int r = 0; r < i; ++r) expect_record(train, at++, r, 10 * i);

  const auto test = data::read_cifar10_split(dir.string(), false);
  ASSERT_EQ(test.images.size(0), 3);
  for (int r = 0; r < 3; ++r) expect_record(test, r, r, 99);
  EXPECT_LE(test.images.max().item<float>(), 1.0f);
  EXPECT_GE(test.images.min().item<float>(), 0.0f);
}

TEST(Cifar10, TruncatedFileNamesTheFile) {
  const auto dir = fresh_dir("truncated");
  auto b = records(2, 0);
  b.pop_back();
  write(dir / "test_batch.bin", b);
  const std::string msg = message_of([&] { data::read_cifar10_split(dir.string(), false); });
  EXPECT_NE(msg.find((dir / "test_batch.bin").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("3073"), std::string::npos) << msg;
}

TEST(Cifar10, BadLabelNamesTheFileAndRecord) {
  const auto dir = fresh_dir("label");
  auto b = records(3, 0);
  b[2 * data::kCifar10RecordBytes] = 10;
  write(dir / "test_batch.bin", b);
  const std::string msg = message_of([&] { data::read_cifar10_split(dir.string(), false); });
  EXPECT_NE(msg.find((dir / "test_batch.bin").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("record 2 has label 10"), std::string::npos) << msg;
}

TEST(Cifar10, MissingDirectoryOrFileSaysWhatToPlaceWhere) {
  const auto dir = fresh_dir("missing");
  const std::string gone = (dir / "nowhere").string();
  std::string msg = message_of([&] { data::read_cifar10_split(gone, true); });
  EXPECT_NE(msg.find(gone), std::string::npos) << msg;
  EXPECT_NE(msg.find("not distributable"), std::string::npos) << msg;
  // Four of the five training files present: the error names the missing one.
  for (int i : {1, 2, 3, 5}) write(dir / ("data_batch_" + std::to_string(i) + ".bin"), records(1, i));
  msg = message_of([&] { data::read_cifar10_split(dir.string(), true); });
  EXPECT_NE(msg.find((dir / "data_batch_4.bin").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("binary version"), std::string::npos) << msg;
}
