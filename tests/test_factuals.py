"""Factual selection as a pure function of inputs, predicted classes and config."""

import pytest
import torch

from flowcf.errors import UserError
from flowcf.factuals import select_factuals

#: Ten inputs whose value is their index, and the classes a classifier gives them.
X = torch.arange(10.0)[:, None]
Y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])


def test_points_of_the_explained_class_go_to_the_target_in_order_up_to_the_limit():
    x, y, y_target = select_factuals(X, Y, "next", 3, explained=0, limit=3)
    assert x[:, 0].tolist() == [0, 3, 6]
    assert y.tolist() == [0, 0, 0]
    assert y_target.tolist() == [1, 1, 1]


def test_every_class_moves_to_a_fixed_target_except_that_class_itself():
    x, y, y_target = select_factuals(X, Y, 2, 3)
    assert x[:, 0].tolist() == [0, 1, 3, 4, 6, 7, 9]
    assert (y != 2).all() and (y_target == 2).all()


def test_pairs_take_up_to_the_limit_of_each_class_in_pair_order():
    x, y, y_target = select_factuals(X, Y, "next", 3, limit=2, pairs=[[2, 0], [1, 2]])
    assert x[:, 0].tolist() == [2, 5, 1, 4]
    assert y.tolist() == [2, 2, 1, 1]
    assert y_target.tolist() == [0, 0, 2, 2]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pairs": [[0, 3]]}, "data.pairs must be [class, other class] in 0..2"),
        ({"explained": 2, "target": 2}, "no factuals: the classifier assigns no val point"),
        ({"target": 5}, "method.target must be one of next, flip or a class in 0..2, got 5"),
    ],
)
def test_a_selection_without_factuals_is_one_line(options, message):
    target = options.pop("target", "next")
    with pytest.raises(UserError) as error:
        select_factuals(X, Y, target, 3, split="val", **options)
    assert str(error.value).startswith(message)
