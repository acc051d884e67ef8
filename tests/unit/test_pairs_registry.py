"""harness.models.pairs and the encoder registry"""

from __future__ import annotations

import pytest

from harness.errors import UserError
from harness.models.pairs import get_pair


def test_unknown_pair_suggests_a_name():
    with pytest.raises(UserError, match="did you mean 'wav2vec_bilstm'"):
        get_pair("wav2vec_bilstn")
