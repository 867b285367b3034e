#include <l2o/core/error.h>
#include <l2o/core/spec.h>

#include <gtest/gtest.h>

using l2o::Spec;

TEST(Spec, ParsesNameAndValues) {
  const Spec s = Spec::parse("mlp:dataset=mnist, hidden=20,act=sigmoid");
  EXPECT_EQ(s.name(), "mlp");
  EXPECT_EQ(s.get_string("dataset", ""), "mnist");
  EXPECT_EQ(s.get_int("hidden", 0), 20);
  EXPECT_EQ(s.get_string("act", ""), "sigmoid");
  EXPECT_NO_THROW(s.check_all_used());
  EXPECT_EQ(s.str(), "mlp:act=sigmoid,dataset=mnist,hidden=20");
}

TEST(Spec, RejectsMalformedText) {
  EXPECT_THROW(Spec::parse(""), l2o::Error);
  EXPECT_THROW(Spec::parse(":a=1"), l2o::Error);
  EXPECT_THROW(Spec::parse("adam:lr"), l2o::Error);
  EXPECT_THROW(Spec::parse("adam:lr=1,lr=2"), l2o::Error);
}

TEST(Spec, TypedGettersValidate) {
  const Spec s = Spec::parse("adam:lr=abc,amsgrad=maybe,n=1.5");
  EXPECT_THROW(s.get_double("lr", 0), l2o::Error);
  EXPECT_THROW(s.get_bool("amsgrad", false), l2o::Error);
  EXPECT_THROW(s.get_int("n", 0), l2o::Error);
  EXPECT_DOUBLE_EQ(s.get_double("missing", 0.25), 0.25);
}

TEST(Spec, UnknownKeyIsReportedWithKnownOnes) {
  const Spec s = Spec::parse("adam:lrr=0.1");
  s.get_double("lr", 1e-3);
  try {
    s.check_all_used();
    FAIL() << "expected an error";
  } catch (const l2o::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lrr"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("lr"), std::string::npos);
  }
}

TEST(Spec, DoublesRoundTrip) {
  for (double v : {0.1, 1e-3, 3.0000000000000004, 123456.789, 1e-20}) {
    EXPECT_EQ(std::stod(l2o::format_double(v)), v);
  }
}
