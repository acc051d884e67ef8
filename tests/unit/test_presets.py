"""Protocol presets (harness.corpus.presets): each preset's folds are what the toolkit it reproduces does,
they do not depend on row order, configs are chosen per test fold, and the existing protocols' splits are
unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from harness.corpus.folds import SPLIT_VERSION, make_folds
from harness.corpus.presets import PRESETS, RANDOM_VALIDATION_FRACTION, speaker_dependent_parts
from harness.corpus.protocols import (
    OPTIMISTIC,
    PROTOCOLS,
    describe_protocol,
    make_protocol_folds,
    selection_folds,
    selection_units,
)


def _ids(manifest, rows):
    return set(manifest.utterance_id.iloc[rows])


def test_presets_are_offered_and_labelled_in_every_header():
    assert set(PRESETS) <= set(PROTOCOLS)
    for preset in PRESETS:
        assert "never ranked with honest" in OPTIMISTIC[preset]
        assert "NEVER RANKED WITH HONEST" in describe_protocol(preset)
    assert describe_protocol("loso") == "loso"
    assert SPLIT_VERSION == 3  # the existing protocols' splits did not change


def test_speaker_dependent_splits_utterances_at_random_into_five_parts(demo_manifest):
    folds = make_protocol_folds(demo_manifest, "speaker-dependent")
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested) == list(range(len(demo_manifest)))  # each utterance tested once
    for fold in folds:
        assert not set(fold.train) & set(fold.validation) and not set(fold.train) & set(fold.test)
        assert set(fold.train) | set(fold.validation) | set(fold.test) == set(range(len(demo_manifest)))
        # test speakers are in training: the point of the preset
        assert set(demo_manifest.speaker.iloc[fold.test]) <= set(demo_manifest.speaker.iloc[fold.train])
    sizes = np.bincount(speaker_dependent_parts(demo_manifest))[1:]
    assert sizes.max() - sizes.min() <= 1
    shuffled = demo_manifest.sample(frac=1, random_state=3).reset_index(drop=True)
    again = make_protocol_folds(shuffled, "speaker-dependent")
    for a, b in zip(folds, again):
        assert _ids(demo_manifest, a.test) == _ids(shuffled, b.test)  # independent of row order


def test_random_val_validates_on_a_fifth_of_the_training_sessions(demo_manifest):
    for fold in make_protocol_folds(demo_manifest, "random-val", (1, 3)):
        sessions = demo_manifest.session.to_numpy()
        assert set(sessions[fold.test]) == {fold.test_session}
        assert fold.test_session not in set(sessions[fold.train]) | set(sessions[fold.validation])
        share = len(fold.validation) / (len(fold.train) + len(fold.validation))
        assert abs(share - RANDOM_VALIDATION_FRACTION) < 0.01
        assert set(demo_manifest.speaker.iloc[fold.validation]) <= set(demo_manifest.speaker.iloc[fold.train])
        loso = make_folds(demo_manifest, (fold.test_session,))[0]
        assert list(fold.test) == list(loso.test)  # the same test fold as LOSO


def test_test_selected_validates_on_the_test_session(demo_manifest):
    (fold,) = make_protocol_folds(demo_manifest, "test-selected", (2,))
    assert list(fold.validation) == list(fold.test) and len(fold.test)
    assert set(demo_manifest.session.iloc[fold.train]) == {1, 3, 4, 5}


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_choose_configs_per_test_fold_without_testing_in_the_search(demo_manifest, preset):
    assert selection_units(preset, (1, 2)) == (1, 2)
    (search,) = selection_folds(demo_manifest, preset, (1, 2), 2)
    (final,) = make_protocol_folds(demo_manifest, preset, (2,))
    assert len(search.test) == 0 and list(search.validation) == list(final.validation)
    assert list(search.train) == list(final.train)
    with pytest.raises(ValueError, match="per test fold"):
        selection_folds(demo_manifest, preset, (1, 2), None)
