"""Downloaded pickles load numpy data and nothing that would run code."""

import gzip
import io
import os
import pickle

import numpy as np
import pytest

from compendium.data.embedded.animals import load_array
from compendium.data.errors import DataError
from compendium.data.numpy_pickle import load_numpy_pickle


def test_arrays_and_plain_containers_load():
    data = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [1, 2, 3]}
    got = load_numpy_pickle(io.BytesIO(pickle.dumps(data)), "X", "fetch it again.")
    assert np.array_equal(got[b"data"], data[b"data"]) and got[b"labels"] == [1, 2, 3]


def test_a_pickle_that_names_a_function_is_refused_before_it_runs(tmp_path):
    class Calls:
        def __reduce__(self):
            return os.system, ("touch " + str(tmp_path / "ran"),)

    path = tmp_path / "animals.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump([Calls()], f)
    with pytest.raises(DataError, match=r"Animal-MNIST pickle refers to posix\.system, which is "
                                        r"not numpy data; refusing to load it\. Fix: re-fetch "
                                        r"the pinned wheel"):
        load_array(path)
    assert not (tmp_path / "ran").exists()
