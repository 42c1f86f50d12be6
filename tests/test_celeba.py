"""Tests for the CelebA loader on a tiny stand-in in the real layout and file formats."""

import math

import pytest
import torch
from celeba_fixture import NAMES, write_fake_celeba
from PIL import Image

from flowcf.data import DATASETS
from flowcf.data.celeba import _Images, read_attributes
from flowcf.data.streamed import StreamedImages
from flowcf.errors import UserError


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_fake_celeba(tmp_path_factory.mktemp("celeba"))


def load(root, seed=0, **options):
    return DATASETS.build("celeba", {"root": str(root), **options}, seed)


def test_reads_the_layout_labels_attributes_and_partition(root):
    ds = load(root, size=32, attributes=["Male", "Smiling", "Eyeglasses"])
    assert ds.shape == (3, 32, 32) and ds.num_classes == 2
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (28, 10, 10)
    x = ds.x_train[:]  # read from the uint8 cache
    assert x.min() >= 0 and x.max() <= 1 and x.dtype == ds.x_train.dtype == torch.float32
    assert ds.attributes.names == ["Smiling", "Male", "Eyeglasses"]  # labelled one first, once
    names, files, values = read_attributes(root / "list_attr_celeba.txt")
    assert names == NAMES and files[0] == "000001.jpg" and values.shape == (48, 40)
    smiling = torch.from_numpy(values[:, NAMES.index("Smiling")]).long()
    assert torch.equal(ds.y_train, smiling[:28]) and torch.equal(ds.y_test, smiling[38:])
    assert torch.equal(ds.attributes.test[:, 0].long(), ds.y_test)
    assert ds.class_names == ["Smiling=0", "Smiling=1"]
    assert ds.class_index("Smiling=0") == 0 and ds.class_index("Smiling:1") == 1
    assert ds.class_index("next") == "next" and ds.class_index(1) == 1
    with pytest.raises(UserError, match="choose one of: next, Smiling=0, Smiling=1"):
        ds.class_index("Male=1")


def test_prior_of_the_other_attributes_given_the_label(root):
    ds = load(root, size=16, attributes=["Male"])
    prior = ds.attributes.prior()
    assert prior[:, 0].tolist() == [0.0, 1.0]
    male = ds.attributes.train[:, 1]
    for c in (0, 1):
        rows = ds.y_train == c
        assert prior[c, 1] == pytest.approx(((male[rows].sum() + 1) / (rows.sum() + 2)).item())


def test_sizes_crop_subsets_and_seeds(root, tmp_path):
    big = load(root, size=128, train_size=5, val_size=2, test_size=3)
    assert big.shape == (3, 128, 128) and len(big.x_train) == 5 and len(big.x_test) == 3
    assert torch.equal(load(root, size=16, train_size=5).x_train[:],
                       load(root, size=16, train_size=5).x_train[:])  # fmt: skip
    assert not torch.equal(load(root, size=16, train_size=5).x_train[:],
                           load(root, 1, size=16, train_size=5).x_train[:])  # fmt: skip
    workers = load(root, size=16, train_size=5, workers=2, cache=tmp_path)  # two processes
    assert torch.equal(workers.x_train[:], load(root, size=16, train_size=5).x_train[:])
    with pytest.raises(UserError, match=r"train_size must be in 1\.\.28"):
        load(root, train_size=100)


def test_splits_are_decoded_once_into_a_cache_named_by_the_images(tmp_path):
    root, cache = write_fake_celeba(tmp_path / "celeba", 12), tmp_path / "cache"
    first = load(root, size=16, cache=str(cache))  # 7 train, 2 val, 3 test
    files = sorted(cache.iterdir())
    assert len(files) == 3 and isinstance(first.x_test, StreamedImages)
    paths = [root / "img_align_celeba" / f"{i:06d}.jpg" for i in (10, 11, 12)]
    decoded = torch.stack([_Images(paths, 16, 178)[i] for i in range(3)]).float() / 255
    assert torch.equal(first.x_test[:], decoded)
    stamps = [f.stat().st_mtime_ns for f in files]
    assert torch.equal(load(root, size=16, cache=str(cache)).x_test[:], decoded)
    assert [f.stat().st_mtime_ns for f in sorted(cache.iterdir())] == stamps  # read, not decoded
    Image.new("RGB", (178, 218), (255, 0, 0)).save(paths[2])
    changed = load(root, size=16, cache=str(cache)).x_test[2]
    assert len(list(cache.iterdir())) == 4 and changed[0].min() > 0.9 > changed[1:].max() + 0.8
    paths[1].unlink()
    with pytest.raises(UserError, match=r"000011\.jpg is listed in list_attr_celeba\.txt but"):
        load(root, size=16, cache=str(cache))


def test_missing_data_names_the_layout_and_where_to_get_it(tmp_path):
    with pytest.raises(UserError) as error:
        load(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message and "list_attr_celeba.txt" in message
    assert "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html" in message
    assert "\n" not in message


def test_unknown_attribute_lists_the_valid_names(root):
    with pytest.raises(UserError, match=r"unknown attribute Smiley.*5_o_Clock_Shadow.*Young"):
        load(root, attribute="Smiley")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("000003.jpg  1 -1", "list_attr_celeba.txt:5: expected an image name and 40 values"),
        ("000003.jpg" + " 2" * 40, "list_attr_celeba.txt:5: expected"),
    ],
)
def test_a_bad_attribute_line_names_file_and_line(tmp_path, line, expected):
    folder = write_fake_celeba(tmp_path, count=10)
    path = folder / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[4] = line
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=expected):
        load(folder)


def test_a_bad_count_or_partition_is_an_error(tmp_path):
    folder = write_fake_celeba(tmp_path, count=10)
    attributes = folder / "list_attr_celeba.txt"
    attributes.write_text(attributes.read_text().replace("10\n", "11\n", 1))
    with pytest.raises(UserError, match=r"list_attr_celeba.txt:1: says 11 images"):
        load(folder)
    folder = write_fake_celeba(tmp_path / "b", count=10)
    (folder / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    with pytest.raises(UserError, match=r"list_eval_partition.txt:1: expected"):
        load(folder)


def test_resnet34_starts_from_a_local_file_with_a_new_head(tmp_path):
    from torchvision.models import resnet34

    from flowcf.networks import CLASSIFIERS

    imagenet = resnet34(weights=None)
    torch.save(imagenet.state_dict(), tmp_path / "resnet34.pth")
    model = CLASSIFIERS.build("resnet34", (3, 64, 64), 2, weights=str(tmp_path / "resnet34.pth"))
    network = model[1]
    assert torch.equal(network.conv1.weight, imagenet.conv1.weight)
    assert network.fc.out_features == 2
    assert model(torch.rand(3, 3, 64, 64)).shape == (3, 2)
    with pytest.raises(UserError, match=r"classifier.weights: .*nothing.pth does not exist"):
        CLASSIFIERS.build("resnet34", (3, 64, 64), 2, weights=str(tmp_path / "nothing.pth"))
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="is not a ResNet-34 state dict"):
        CLASSIFIERS.build("resnet34", (3, 64, 64), 2, weights=str(tmp_path / "other.pth"))


def test_attribute_flow_sums_out_the_other_attributes_exactly():
    import itertools

    from flowcf.flows import FLOWS
    from flowcf.flows.multilabel import AttributeFlow

    torch.manual_seed(0)
    inner = FLOWS.build("realnvp", 5, context_dim=3, layers=4, base="plugen", sigma=0.5).double()
    for parameter in inner.parameters():  # away from the identity the couplings start at
        parameter.data.normal_(0, 0.3)
    prior = torch.tensor([[0.0, 0.3, 0.8], [1.0, 0.6, 0.1]], dtype=torch.float64)
    flow = AttributeFlow(inner, prior)
    z, y = torch.randn(6, 5, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1, 0])
    expected = []
    for zi, yi in zip(z, y.tolist(), strict=True):
        terms = []
        for rest in itertools.product((0.0, 1.0), repeat=2):
            a = torch.tensor([float(yi), *rest], dtype=torch.float64)
            p = torch.where(a > 0, prior[yi], 1 - prior[yi])[1:].prod()
            terms.append(p.log() + inner.log_prob(zi[None], a[None])[0])
        expected.append(torch.logsumexp(torch.stack(terms), 0))
    actual = flow.log_prob(z, torch.eye(2, dtype=torch.float64)[y])
    assert torch.allclose(actual, torch.stack(expected), atol=1e-10)
    assert flow.sample(4, torch.eye(2, dtype=torch.float64)[[0, 1, 1, 0]]).shape == (4, 5)
    with pytest.raises(UserError, match=r"model\.base=plugen"):
        AttributeFlow(FLOWS.build("realnvp", 5, context_dim=3), prior)


def test_mixed_precision_training_runs_and_learns_on_the_cpu():
    from torch.nn.functional import cross_entropy

    from flowcf.networks import CLASSIFIERS
    from flowcf.training import fit

    torch.manual_seed(0)
    x = torch.rand(64, 3, 16, 16)
    y = (x[:, 0].mean((1, 2)) > 0.5).long()
    model = CLASSIFIERS.build("cnn", (3, 16, 16), 2, channels=4, hidden=16)
    before = cross_entropy(model(x), y).item()
    summary = fit(model, lambda m, a, b: cross_entropy(m(a), b), (x, y), (x, y), epochs=5,
                  batch_size=16, lr=1e-2, amp=True, progress=False)  # fmt: skip
    assert math.isfinite(summary["best_val_loss"]) and summary["best_val_loss"] < before


@pytest.mark.parametrize("size", [64, 128, 256])
def test_autoencoders_are_sized_by_resolution(size):
    from flowcf.networks import AUTOENCODERS

    x = torch.rand(2, 3, size, size)
    for name in ("conv_ae", "conv_vae"):
        model = AUTOENCODERS.build(name, (3, size, size), latent_dim=8, channels=4).eval()
        strides = sum(isinstance(m, torch.nn.Conv2d) for m in model.encoder)
        assert 2**strides * 4 == size  # halved down to 4x4
        assert model.encode(x).shape == (2, 8) and model.decode(model.encode(x)).shape == x.shape
