"""Data loaders of the torch stage: CIFAR pickles, image folders (plain and .tar.gz), cache, errors,
held-out split and on-device augmentation."""

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: one thread avoids oversubscription when the suite shares cores

from _train_fixtures import write_cifar10, write_cifar100, write_image_folder  # noqa: E402

from nascsim.train.data import augment, cache_file, holdout_split, load_dataset  # noqa: E402


def test_cifar10_pickle_layout_decodes_to_hwc_uint8_with_labels(tmp_path):
    x, y = write_cifar10(tmp_path, per_batch=4, test=6)
    ds = load_dataset(tmp_path)
    assert ds.name == "cifar10" and ds.n_classes == 10
    assert ds.x_train.shape == (20, 32, 32, 3) and ds.x_train.dtype == np.uint8
    np.testing.assert_array_equal(ds.x_train, x)
    np.testing.assert_array_equal(ds.y_train, y)
    assert ds.x_test.shape == (6, 32, 32, 3)


def test_cifar100_pickle_layout_uses_fine_labels(tmp_path):
    x, y = write_cifar100(tmp_path)
    ds = load_dataset(tmp_path / "cifar-100-python")
    assert ds.name == "cifar100" and ds.n_classes == 100
    np.testing.assert_array_equal(ds.y_train, y)
    np.testing.assert_array_equal(ds.x_train, x)


@pytest.mark.parametrize("tar", [False, True])
def test_image_folder_and_its_tar_gz_give_the_same_lossless_pixels(tmp_path, tar):
    x, y = write_image_folder(tmp_path / "imgs", classes=3, per_class=4, fmt="PNG", tar=tar)
    ds = load_dataset(tmp_path / "imgs")
    assert ds.classes == ["cls0", "cls1", "cls2"]
    np.testing.assert_array_equal(ds.x_train, x)
    np.testing.assert_array_equal(ds.y_train, y)
    assert len(ds.y_test) == 12


def test_jpeg_folder_decodes_close_to_the_source_pixels(tmp_path):
    x, _ = write_image_folder(tmp_path / "jpg", classes=2, per_class=3, fmt="JPEG", tar=True)
    ds = load_dataset(tmp_path / "jpg")
    assert np.abs(ds.x_train.astype(int) - x.astype(int)).mean() < 25


def test_decoded_arrays_are_cached_and_rebuilt_when_the_source_changes(tmp_path):
    write_cifar10(tmp_path / "d", per_batch=2, test=2)
    cache = tmp_path / "cache"
    first = load_dataset(tmp_path / "d", cache_dir=cache)
    target = cache_file(tmp_path / "d", cache)
    assert target.exists()
    assert np.array_equal(load_dataset(tmp_path / "d", cache_dir=cache).x_train, first.x_train)
    batch = tmp_path / "d" / "cifar-10-batches-py" / "data_batch_1"
    d = pickle.loads(batch.read_bytes())
    d[b"data"] = np.full_like(d[b"data"], 7)
    batch.write_bytes(pickle.dumps(d))
    assert (load_dataset(tmp_path / "d", cache_dir=cache).x_train[:2] == 7).all()


def test_missing_dataset_error_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nothing")):
        load_dataset(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_dataset(tmp_path / "empty")


def test_incomplete_cifar_folder_names_the_missing_files(tmp_path):
    write_cifar10(tmp_path, per_batch=2, test=2)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_dataset(tmp_path)


def test_malformed_pickle_error_names_the_file(tmp_path):
    write_cifar10(tmp_path, per_batch=2, test=2)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match="data_batch_3"):
        load_dataset(tmp_path, use_cache=False)
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_3"):
        load_dataset(tmp_path, use_cache=False)


def test_wrong_image_size_error_names_the_image(tmp_path):
    from PIL import Image

    write_image_folder(tmp_path, classes=2, per_class=2)
    Image.new("RGB", (16, 16)).save(tmp_path / "train" / "cls1" / "big.png")
    with pytest.raises(ValueError, match="big.png"):
        load_dataset(tmp_path, use_cache=False)


def test_holdout_split_is_disjoint_sized_and_seeded():
    tr, va = holdout_split(100, 10, seed=3)
    assert len(tr) == 90 and len(va) == 10 and not set(tr) & set(va)
    assert np.array_equal(va, holdout_split(100, 10, seed=3)[1])
    assert not np.array_equal(va, holdout_split(100, 10, seed=4)[1])
    with pytest.raises(ValueError, match="valid_images"):
        holdout_split(100, 100, 0)


def test_augmentation_crops_within_padding_and_flips_with_a_seeded_generator():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32) + 1
    a = augment(x, torch.Generator().manual_seed(0))
    b = augment(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    # every non-padding value of the output comes from the same image
    for i in range(2):
        vals = a[i][a[i] != 0]
        assert torch.isin(vals, x[i]).all()
    many = augment(x.repeat(32, 1, 1, 1), torch.Generator().manual_seed(1))
    assert (many == 0).any()  # some crops show the zero padding


def test_heldout_prefixes_and_batches_mix_the_classes_of_class_sorted_files():
    y = np.repeat(np.arange(10), 100)  # files stored class by class, as in CIFAR image folders
    tr, va = holdout_split(len(y), 200, seed=0)
    assert len(np.unique(y[va[:50]])) >= 8 and len(np.unique(y[tr[:50]])) >= 8
