"""hlmlib.book's safe-side rounding: the bounds and ranges the chapters print stay bounds at the printed digits."""
import numpy as np
import pytest

from hlmlib import InputError
from hlmlib.book import round_down, round_up, round_up_sig


@pytest.mark.parametrize("x, decimals, up, down", [
    (0.0015, 4, 0.0015, 0.0015),        # on a step (0.0015 * 1e4 is 15.0 exactly in binary floating point)
    (0.0051, 4, 0.0051, 0.0051),        # 0.0051 * 1e4 = 51.00000000000001: not 0.0052 going up
    (0.07, 2, 0.07, 0.07),              # 0.07 * 100 = 7.000000000000001
    (0.0015, 3, 0.002, 0.001),
    (0.12301, 3, 0.124, 0.123),
    (0.123, 3, 0.123, 0.123),           # on a step: unchanged
    (1.1, 2, 1.1, 1.1),                 # 1.1 * 100 = 110.00000000000001
    (0.29, 2, 0.29, 0.29),              # 0.29 * 100 = 28.999999999999996: not 0.28 going down
    (0.944, 3, 0.944, 0.944),           # 0.944 / 0.001 = 943.9999999999999 (ch15's former spelling printed 94.3%)
    (2.5, 0, 3.0, 2.0),
    (7.0, 0, 7.0, 7.0),
    (123.0, -1, 130.0, 120.0),
    (1234.5, -2, 1300.0, 1200.0),
    (0.0, 2, 0.0, 0.0),
])
def test_exact_cases(x, decimals, up, down):
    assert round_up(x, decimals) == up and round_down(x, decimals) == down
    assert type(round_up(x, decimals)) is float and type(round_down(x, decimals)) is float


def test_result_is_the_nearest_float_to_the_printed_decimal():
    # k / 10**d, not k * 0.1**d: the glued number is the one a reader would type
    assert round_up(0.1229, 3) == 0.123 and round_down(0.3001, 1) == 0.3 and round_up(0.289, 2) == 0.29


def test_a_bound_stays_a_bound_and_is_at_most_one_step_away():
    rng = np.random.default_rng(20240611)
    for x in rng.normal(scale=10.0, size=2000):
        for decimals in (-1, 0, 1, 3, 5):
            step = 10.0 ** -decimals
            up, down = round_up(x, decimals), round_down(x, decimals)
            assert down <= x <= up and up - x < step and x - down < step
            assert f"{up:.{max(decimals, 0)}f}" == f"{np.ceil(x / step) * step + 0.0:.{max(decimals, 0)}f}"


@pytest.mark.parametrize("x", [0.0015, 0.12301, 2.5, 123.0, 1e-7, 0.999999])
@pytest.mark.parametrize("decimals", [-2, 0, 1, 4])
def test_negatives_mirror(x, decimals):
    assert round_down(-x, decimals) == -round_up(x, decimals)
    assert round_up(-x, decimals) == -round_down(x, decimals)


def test_no_negative_zero():
    # np.ceil(-0.4) is -0.0, which prints as "-0.00"
    assert str(round_up(-0.004, 2)) == "0.0" and str(round_down(0.004, 2)) == "0.0"


@pytest.mark.parametrize("x, digits, expected", [
    (3.2e-7, 1, 4e-7), (3e-7, 1, 3e-7), (0.0015, 1, 0.002), (0.0123, 2, 0.013), (0.012, 2, 0.012),
    (9.5, 1, 10.0), (450.0, 1, 500.0), (0.0, 1, 0.0), (-0.0035, 1, -0.003), (1e-300, 1, 1e-300),
])
def test_round_up_sig(x, digits, expected):
    assert round_up_sig(x, digits) == expected
    assert f"{round_up_sig(x, digits):.{digits - 1}e}" == f"{expected:.{digits - 1}e}"


def test_round_up_sig_bound_in_e_format():
    rng = np.random.default_rng(7)
    for x in 10.0 ** rng.uniform(-12, 3, size=1000):
        printed = float(f"{round_up_sig(x):.0e}")
        assert printed >= x and printed == round_up_sig(x)


@pytest.mark.parametrize("call, match", [
    (lambda: round_up(float("nan"), 2), "finite"),
    (lambda: round_down(np.inf, 2), "finite"),
    (lambda: round_up("0.5", 2), "real number"),
    (lambda: round_up(True, 2), "real number"),
    (lambda: round_up(np.array([0.1, 0.2]), 2), "real number"),
    (lambda: round_up(0.5, 2.5), "integer"),
    (lambda: round_down(0.5, "2"), "integer"),
    (lambda: round_up(0.5, 400), "between -308 and 308"),
    (lambda: round_up(1e300, 300), "out of floating-point range"),
    (lambda: round_up_sig(0.5, 0), "at least 1"),
    (lambda: round_up_sig(np.nan), "finite"),
    (lambda: round_up_sig(5e-324), "324 decimal places"),
])
def test_bad_input(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_numpy_scalars_and_integral_floats_accepted():
    assert round_up(np.float64(0.0015), np.int64(4)) == 0.0015 and round_down(np.float32(2.5), 0.0) == 2.0
