#pragma once
/// CIFAR-10 (Krizhevsky 2009) in its "binary version" (cifar-10-binary.tar.gz): records of one label
/// byte followed by 3072 image bytes (1024 red, 1024 green, 1024 blue, each 32×32 row-major).
#include <l2o/data/idx.h>

#include <string>

namespace l2o {
namespace data {

/// Bytes per CIFAR-10 record: 1 label + 3·32·32 pixels.
constexpr int64_t kCifar10RecordBytes = 1 + 3 * 32 * 32;

/// Reads the records of one CIFAR-10 binary file: images float [n, 3, 32, 32] in [0, 1], labels int64
/// [n]. Throws l2o::Error naming the file when it is missing, its size is not a multiple of 3073 bytes
/// or a label exceeds 9.
Split read_cifar10_file(const std::string& path);

/// Reads data_batch_1.bin … data_batch_5.bin (train) or test_batch.bin (test) from `dir` and
/// concatenates them. CIFAR-10 is not distributable here: a missing directory or file is an l2o::Error
/// saying which file to place where.
Split read_cifar10_split(const std::string& dir, bool train);

}  // namespace data
}  // namespace l2o
