"""Writes the seed corpora of tests/fuzz/corpus/ (idx, cifar10, config, spec) from scratch:
    /usr/bin/python3 tests/fuzz/make_seeds.py
The checkpoint seeds are small l2o checkpoints written by the library (see tests/fuzz/README.md)."""
import gzip
import pathlib
import shutil
import struct

here = pathlib.Path(__file__).resolve().parent
root = here.parents[1]


def write(target, name, data):
    d = here / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def idx(shape, payload=None):
    head = bytes([0, 0, 8, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape)
    count = 1
    for n in shape:
        count *= n
    return head + (payload if payload is not None else bytes(i % 256 for i in range(count)))


write("idx", "labels", idx([5]))
write("idx", "images", idx([2, 3, 3]))
write("idx", "rank4", idx([1, 2, 2, 2]))
write("idx", "images.gz", gzip.compress(idx([2, 4, 4]), mtime=0))
write("idx", "truncated", idx([4, 3, 3])[:-5])
write("idx", "wrong_magic", b"\x00\x00\x0d\x01" + struct.pack(">I", 2) + b"ab")
write("idx", "empty_dims", idx([0, 28, 28]))

record = bytes([3]) + bytes(i % 256 for i in range(3072))
write("cifar10", "one_record", record)
write("cifar10", "two_records", record + bytes([9]) + bytes(3072))
write("cifar10", "bad_label", bytes([10]) + bytes(3072))
write("cifar10", "truncated", record[:-1])

for cfg in sorted((root / "configs").rglob("*.toml")):
    write("config", cfg.parent.name + "_" + cfg.name, cfg.read_bytes())
write("config", "types.toml", 'a = "x"\nb = 1\nc = 1.5e-3\nd = true\ne = \'lit\'\nf = -inf\n')
write("config", "bad.toml", "meta_iterations = [1, 2\nproblem = \n[[[\n")
write("config", "table.toml", "[train]\nlr = 1\n")
write("config", "dotted.toml", "a.b = 1\n\"Quoted Key\" = 2\n")
write("config", "multiline.toml", 'problem = """\nquadratic\n"""\nx = 1979-05-27\n')

specs = [
    "adam:lr=1e-3", "sgd:lr=0.1,momentum=0.9", "rmsprop:lr=0.01,alpha=0.9", "nag:lr=0.1", "adagrad",
    "lstm:preprocess=logsign,k=5,output_scale=0.1", "lstm:hidden_size=4", "hrnn", "crnn", "trainable_adam",
    "dm_quadratic:batch=4,dim=3", "quadratic:dim=3", "bowl:cond=5,angle=1", "rosenbrock", "booth",
    "norm:p=3,dim=4", "dependency_chain:dim=3", "min_max_well:dim=3", "matmul:n=2,k=7", "lasso:dim=3,rows=4",
    "rastrigin:dim=3", "isotropic_quadratic:dim=2,noise=0.1", "sparse_softmax:samples=10",
    "projection_quadratic:dim=3,samples=10,batch=5", "outward_snake:dim=3,samples=10,batch=5",
    "softmax:dataset=random,batch=8", "mlp:dataset=random_mlp,hidden=4-4,act=relu,samples=20",
    "conv:dataset=random,filters=3x3x2,features=16", "log_objective:of=rescale/scale=2/of=(quadratic/dim=3)",
    "sum:of=quadratic/dim=3+bowl/cond=5+(rescale/scale=2/of=(booth))", "sparse:prob=0.5,of=quadratic/dim=3",
    "rosenbrock*1;isotropic_quadratic*3", "@default", "a:b=c,d=e:f", "x:=1,,",
]
for i, s in enumerate(specs):
    write("spec", f"spec_{i:02d}", s)
print("seeds written under", here / "corpus")
