import torch

from gradfail.maths.walsh_hadamard import sign_cube, walsh_hadamard


def test_transform_is_the_correlation_with_every_parity():
    d = 5
    x = sign_cube(d, dtype=torch.float64)
    values = torch.randn(2**d, 3, dtype=torch.float64)
    transformed = walsh_hadamard(values)
    for s in range(2**d):
        subset = [k for k in range(d) if s >> k & 1]
        character = x[:, subset].prod(1) if subset else torch.ones(2**d, dtype=torch.float64)
        torch.testing.assert_close(transformed[s], character @ values)


def test_transform_along_another_axis_and_parseval():
    values = torch.randn(4, 2**6, dtype=torch.float64)
    transformed = walsh_hadamard(values, dim=1)
    torch.testing.assert_close(transformed.square().sum(1) / 2**6, values.square().sum(1))
    torch.testing.assert_close(walsh_hadamard(transformed, dim=1) / 2**6, values)


def test_sign_cube_holds_every_point_once():
    cube = sign_cube(3)
    assert cube.shape == (8, 3) and set(cube.unique().tolist()) == {-1.0, 1.0}
    assert len({tuple(row) for row in cube.tolist()}) == 8


def test_non_power_of_two_is_refused():
    try:
        walsh_hadamard(torch.zeros(6))
    except ValueError as error:
        assert "power-of-two" in str(error)
    else:
        raise AssertionError("a length of 6 was accepted")
