// The --config reader (toml++ underneath): values as flag text in file order, and one-line errors
// naming the file, line and key.
#include <l2o/core/error.h>
#include <l2o/io/config.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace l2o;

namespace {
std::string error_of(const std::string& text) {
  try {
    io::parse_config(text, "cfg.toml");
  } catch (const l2o::Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    return what;
  }
  ADD_FAILURE() << "no error for: " << text;
  return "";
}
}  // namespace

TEST(Config, ValuesBecomeFlagTextInFileOrder) {
  const auto entries = io::parse_config(
      "# a comment\nproblem = \"dm_quadratic:batch=4,dim=3\"  # trailing comment\n"
      "meta_iterations = 20\nmeta_lr = 1e-3\nplot = false\nname = 'lit#eral'\nbig = 1e4\n",
      "cfg.toml");
  ASSERT_EQ(entries.size(), 6u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"problem", "dm_quadratic:batch=4,dim=3"}, {"meta_iterations", "20"}, {"meta_lr", "0.001"},
      {"plot", "false"}, {"name", "lit#eral"}, {"big", "10000"}};
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].key, expected[i].first);
    EXPECT_EQ(entries[i].value, expected[i].second);
    EXPECT_EQ(entries[i].line, static_cast<int64_t>(i) + 2);
  }
}

TEST(Config, ErrorsNameFileLineAndKey) {
  EXPECT_NE(error_of("a = 1\nb = [1, 2\n").find("cfg.toml:2:"), std::string::npos);
  const std::string table = error_of("a = 1\n[train]\nlr = 1\n");
  EXPECT_NE(table.find("cfg.toml:2"), std::string::npos) << table;
  EXPECT_NE(table.find("sections are not supported"), std::string::npos) << table;
  const std::string array = error_of("x = 1\nlr_grid = [1, 2]\n");
  EXPECT_NE(array.find("cfg.toml:2:1: key 'lr_grid'"), std::string::npos) << array;
  EXPECT_NE(error_of("\"Bad Key\" = 1\n").find("bad key 'Bad Key'"), std::string::npos);
  EXPECT_NE(error_of("config = \"other.toml\"\n").find("cannot include another"), std::string::npos);
  EXPECT_NE(error_of("when = 1979-05-27\n").find("key 'when'"), std::string::npos);
  EXPECT_NE(error_of("a = 1\na = 2\n").find("cfg.toml:2:"), std::string::npos);
  EXPECT_NE(error_of("problem = \n").find("cfg.toml:1:"), std::string::npos);
}

// toml++ 3.3.0 hit __builtin_unreachable() on these (tests/fuzz/crashes/config/); see config.cpp.
TEST(Config, NonAsciiTextIsParsedOrRefusedCleanly) {
  EXPECT_NE(error_of("\u00a7").find("cfg.toml:1:1:"), std::string::npos);
  EXPECT_NE(error_of("a = 1 \u00d7\n").find("\u00d7"), std::string::npos);
  const auto entries = io::parse_config(
      "# \u00a7 3.1, 2\u00d720 units\nlabel = \"Adam \u03b1 \u00d7 \u2f00 \ufb30\"\nm = \"\"\"\\\n\u00a7x\"\"\"\n", "cfg.toml");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].value, "Adam \u03b1 \u00d7 \u2f00 \ufb30");
  EXPECT_EQ(entries[1].value, "\u00a7x");
  EXPECT_NE(error_of("s = \"\U000F0041\"\n").find("cfg.toml:1:6: private-use"), std::string::npos);
}

TEST(Config, MissingFileIsAnError) {
  try {
    io::read_config("/nonexistent/l2o.toml");
    FAIL() << "expected an error";
  } catch (const l2o::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/l2o.toml"), std::string::npos) << e.what();
  }
}
