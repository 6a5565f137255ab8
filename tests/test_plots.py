"""Every kind of picture is written as a real PNG of sensible size."""

import warnings

import matplotlib.image
import numpy as np
import pytest
from pictures import assert_drawn

import infer
from infer.plots import KINDS
from models import targets

pytestmark = pytest.mark.slow  # a module `make test-fast` leaves out


@pytest.fixture(scope="module")
def runs():
    target = targets.get("eight_schools")
    return {
        "nuts": infer.sample(0, target, infer.nuts(), num_chains=2, num_samples=300),
        "advi": infer.advi(0, target, "meanfield", num_steps=500, num_draws=300),
    }


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_writes_a_png(kind, runs, tmp_path):
    if kind in ("forest", "dist"):  # kinds that overlay several runs
        results = runs
    else:
        results = runs["advi"] if kind == "elbo" else runs["nuts"]
    if kind == "ppc":  # needs the posterior predictive group
        results = infer.predictive(runs["nuts"], targets.get("eight_schools"))
    path = tmp_path / f"{kind}.png"
    assert infer.plot(results, kind=kind, path=path) is None
    assert_drawn(path)  # data in colour on at least 0.5% of the pixels (every kind has 2-8%)
    image = matplotlib.image.imread(path)
    height, width, _ = image.shape
    assert 300 <= width <= 2500 and 150 <= height <= 2500
    rgb = image[..., :3]  # and no solid fill
    assert np.mean(np.any(np.abs(rgb - rgb[0, 0]) > 0.1, axis=-1)) < 0.8


def test_plot_without_a_path_returns_the_collection(runs):
    collection = infer.plot(runs["nuts"], kind="trace")
    assert hasattr(collection, "savefig")


def test_unknown_kind(runs):
    with pytest.raises(ValueError, match="kind must be one of trace, rank"):
        infer.plot(runs["nuts"], kind="violin")
    with pytest.raises(ValueError, match="results is empty"):  # was "must be a Result"
        infer.plot({}, kind="forest")
    with pytest.raises(ValueError, match="results is empty"):
        infer.plot([], kind="forest")


def test_one_run_kinds_refuse_several(runs):
    with pytest.raises(ValueError, match="shows one run"):
        infer.plot(runs, kind="trace")


def test_var_names_as_one_string_is_one_name_and_unknown_names_list_the_known(runs):
    collection = infer.plot(runs["nuts"], kind="trace", var_names="mu")  # not ["m", "u"]
    assert hasattr(collection, "savefig")
    with pytest.raises(ValueError, match=r"\['nope'\] are not variables .* \['mu', 'tau'"):
        infer.plot(runs["nuts"], kind="trace", var_names=["nope"])
    with pytest.raises(ValueError, match="var_names is empty"):
        infer.plot(runs["nuts"], kind="trace", var_names=[])


def test_runs_of_different_variables_share_a_forest_and_the_rest_is_checked(runs, tmp_path):
    """A forest of runs with different variables shows what they share; a variable only
    one run has is refused by name, as are a bad panel count, truth and run."""
    other = infer.Result.from_draws({"mu": np.zeros((2, 50)), "extra": np.zeros((2, 50, 3))})
    several = {"nuts": runs["nuts"], "other": other}
    assert infer.plot(several, kind="forest", path=tmp_path / "forest.png") is None
    # a known answer for some variables only (a vector left out failed inside xarray)
    partial = infer.GroundTruth(mean={"mu": 0.0}, std={"mu": 1.0})
    with_extra = {"one": other, "two": other}
    assert infer.plot(with_extra, kind="forest", truth=partial, path=tmp_path / "p.png") is None
    with pytest.raises(ValueError, match=r"\['extra'\] are not variables every run has"):
        infer.plot(several, kind="forest", var_names=["extra"])
    # a variable of one name but another shape is not shared (it was drawn as one); runs
    # that share nothing are refused, naming what each holds
    theta = infer.Result.from_draws({"mu": np.zeros((2, 50)), "theta": np.zeros((2, 50, 3))})
    with pytest.raises(ValueError, match=r"\['theta'\] are not variables every run has"):
        infer.plot({"nuts": runs["nuts"], "theta": theta}, kind="forest", var_names="theta")
    scalar = infer.Result.from_draws({"tau": np.zeros((2, 50, 2))})
    with pytest.raises(ValueError, match=r"share no variable of one shape .*other: tau \(2,\)"):
        infer.plot({"nuts": runs["nuts"], "other": scalar}, kind="forest")
    with pytest.raises(ValueError, match="max_panels must be an integer >= 1; got 0"):
        infer.plot(runs["nuts"], kind="trace", max_panels=0)
    with pytest.raises(TypeError, match="truth must be an infer.GroundTruth; got dict"):
        infer.plot(several, kind="forest", truth={"mu": 0.0})
    with pytest.raises(
        TypeError, match=r"results must map names to infer.Result; got \{'b': 'int'"
    ):
        infer.plot({"a": runs["nuts"], "b": 3}, kind="forest")


def test_ppc_without_predictive_draws_says_how_to_get_them(runs):
    with pytest.raises(ValueError, match=r"call infer.predictive\(result, target\) first"):
        infer.plot(runs["nuts"], kind="ppc")


@pytest.mark.thorough  # an edge case, 3 s
def test_a_one_chain_report_leaves_out_the_rank_plot_and_says_why(tmp_path):
    from infer.report import write_report

    draws = np.random.default_rng(0).standard_normal((1, 1000, 2))
    result = infer.Result.from_draws({"theta": draws})
    with pytest.raises(ValueError, match="kind='rank' compares the chains' ranks; this run"):
        infer.plot(result, kind="rank")
    with pytest.warns(infer.DiagnosticWarning, match="R-hat needs at least 2 chains"):
        table = infer.compare({"one": result})
    index = write_report({"one": result}, table, tmp_path / "report")
    written = {path.name for path in (tmp_path / "report").iterdir()}
    assert {"trace_one.png", "ess_one.png", "forest.png", "index.html"} <= written
    assert "rank_one.png" not in written and "rank_one.png" not in index.read_text()


@pytest.mark.thorough  # an edge case, 14 s (every plot of two runs)
def test_a_report_of_runs_that_share_no_variable_leaves_out_the_forest_plot(tmp_path):
    """``infer report`` of a banana run (x of 2) and a funnel run (v, x of 9) ended in a
    traceback from the forest plot, with no index.html, table or CSV."""
    from infer.report import write_report

    rng = np.random.default_rng(0)
    runs = {
        "two": infer.Result.from_draws({"x": rng.standard_normal((2, 50, 2))}),
        "nine": infer.Result.from_draws({"x": rng.standard_normal((2, 50, 9))}),
    }
    table = infer.compare(runs, warn=False)
    index = write_report(runs, table, tmp_path / "report")
    written = {path.name for path in (tmp_path / "report").iterdir()}
    assert {"trace_two.png", "trace_nine.png", "comparison.csv"} <= written
    assert "forest.png" not in written and "share no variable of one shape" in index.read_text()


@pytest.mark.thorough  # a refusal, 3 s
def test_a_pair_plot_of_one_scalar_is_refused_and_left_out_of_a_report(tmp_path):
    # it was an ECDF titled "pairs of parameters", with the parameter's name on its y axis
    from infer.report import write_report

    rng = np.random.default_rng(0)
    one = infer.Result.from_draws({"x": rng.standard_normal((2, 100))})
    with pytest.raises(ValueError, match=r"kind='pair' plots pairs of parameters; \['x'\] hold"):
        infer.plot(one, kind="pair")
    vector = infer.Result.from_draws({"theta": rng.standard_normal((2, 100, 3))})
    with pytest.raises(ValueError, match="hold one scalar"):  # one component named
        infer.plot(vector, kind="pair", var_names=["theta"], max_panels=1)
    assert infer.plot(vector, kind="pair") is not None  # three components: pairs
    table = infer.compare({"one": one}, warn=False)
    index = write_report({"one": one}, table, tmp_path / "report")
    assert "trace_one.png" in index.read_text() and "pair_one" not in index.read_text()


def test_a_dist_plot_of_runs_of_different_sizes_shows_each_runs_mean_and_interval():
    """ArviZ pads the smaller run with NaN and then draws no mean or interval for it; the
    runs are pooled to one length first."""
    rng = np.random.default_rng(0)
    small = infer.Result.from_draws({"mu": rng.normal(0.0, 1.0, size=(2, 300))})
    large = infer.Result.from_draws({"mu": rng.normal(1.0, 1.0, size=(4, 500))})
    collection = infer.plot({"small": small, "large": large}, kind="dist")
    for model, mean in (("small", 0.0), ("large", 1.0)):
        interval = collection.viz["credible_interval"]["mu"].sel(model=model).item()
        estimate = collection.viz["point_estimate_text"]["mu"].sel(model=model).item()
        assert interval is not None and np.all(np.isfinite(interval.get_xdata())), model
        assert abs(estimate.get_position()[0] - mean) < 0.2, model  # 5 standard errors


def test_max_panels_holds_when_variables_share_a_plate(runs):
    """Eight schools' theta and theta_tilde share the plate "schools": with 12 scalar
    components allowed, mu, tau and theta's 8 schools take 10, and theta_tilde (8 more) is
    left out rather than drawn past the limit."""
    collection = infer.plot(runs["nuts"], kind="trace", max_panels=12)
    figure = collection.get_viz("figure")
    figure = getattr(figure, "item", lambda: figure)()
    labels = {(ax.get_ylabel() or ax.get_xlabel()).split("\n")[0] for ax in figure.axes}
    assert labels - {"Draw"} == {"mu", "tau", "theta"}
    assert len(figure.axes) == 2 * 10  # a density and a trace per component, one row each


def _title(collection) -> str:
    figure = collection.get_viz("figure")
    return getattr(figure, "item", lambda: figure)().get_suptitle()


@pytest.mark.thorough  # an edge case, 2 s
def test_a_plot_that_leaves_components_out_says_so_in_its_title(runs):
    """Eight schools has 18 scalar components (mu, tau, 8 of theta, 8 of theta_tilde): a
    forest of the default 8 panels showed 6 schools of theta and looked like the whole
    posterior. Its title now says what is shown; a plot of every component says nothing."""
    cut = "the first 8 of 18 components: max_panels= or var_names= for others"
    assert cut in _title(infer.plot(runs, kind="forest"))
    every_school = infer.plot(runs["nuts"], kind="trace", var_names=["theta"], max_panels=8)
    assert "components" not in _title(every_school)
    named = _title(infer.plot(runs["nuts"], kind="trace", var_names=["mu", "theta"]))
    assert "the first 8 of 9 components" in named  # var_names: of theirs, not of all 18
    whole = _title(infer.plot(runs["nuts"], kind="trace", var_names=["mu", "tau"]))
    assert "components" not in whole


def _panels(collection) -> int:
    figure = collection.get_viz("figure")
    figure = getattr(figure, "item", lambda: figure)()
    return sum(1 for ax in figure.axes if ax.get_visible() and ax.has_data())


def test_named_variables_keep_to_max_panels():
    """var_names replaced the selection: a 60-component layer asked ArviZ for 60 subplots
    (over its limit of 40: an error from arviz_plots), and max_panels=3 drew all of them."""
    draws = {"w": np.random.default_rng(0).normal(size=(2, 50, 60))}
    layer = infer.Result.from_draws(draws)
    assert _panels(infer.plot(layer, kind="rank", var_names="w", max_panels=3)) == 3
    assert _panels(infer.plot(layer, kind="ess", var_names=["w"])) == 8  # the default


@pytest.mark.parametrize("kind", ["rank", "ess", "autocorr"])
def test_too_few_draws_for_ranks_or_ess_are_refused(kind):
    """A run of 3 draws per chain was drawn as blank axes, without a word."""
    short = infer.Result.from_draws({"a": np.random.default_rng(0).normal(size=(2, 3))})
    with pytest.raises(ValueError, match=rf"kind='{kind}' needs at least 4 draws per chain"):
        infer.plot(short, kind=kind)


@pytest.mark.thorough  # a refusal, 3.5 s
def test_a_report_folder_under_a_file_is_refused_by_name(runs, tmp_path):
    from infer.report import write_report

    (tmp_path / "a_file").write_text("")
    table = infer.compare(runs, warn=False)
    with pytest.raises(ValueError, match=r"lies under .*a_file', which is a file"):
        write_report(runs, table, tmp_path / "a_file" / "report")


@pytest.mark.thorough  # an option's order, 4 s; max_panels stays
def test_named_variables_are_all_shown_in_the_order_given_and_short_runs_get_a_report(tmp_path):
    """Two variables on one plate: the second was dropped when the first had taken the
    panels; a report of a 3-draw run failed on its rank plot (compare accepts such runs)."""
    from infer.report import write_report

    rng = np.random.default_rng(0)
    draws = {"a": rng.normal(size=(2, 50, 6)), "b": rng.normal(size=(2, 50, 6))}
    both = infer.Result.from_draws(draws, dims={"a": ["school"], "b": ["school"]})
    collection = infer.plot(both, kind="trace", var_names=["b", "a"])
    assert _panels(collection) == 2 * 8  # a density and a trace per component: 8 of 12
    figure = collection.get_viz("figure")
    figure = getattr(figure, "item", lambda: figure)()
    shown = [axis.get_ylabel().split("\n")[0] for axis in figure.axes if axis.get_ylabel()]
    assert set(shown) == {"a", "b"} and shown.index("b") < shown.index("a")
    short = infer.Result.from_draws({"mu": rng.normal(size=(2, 3))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", infer.DiagnosticWarning)
        table = infer.compare({"short": short})
    write_report({"short": short}, table, tmp_path / "report")
    written = {path.name for path in (tmp_path / "report").iterdir()}
    assert "trace_short.png" in written and "rank_short.png" not in written


def test_the_forest_intervals_are_the_94_percent_its_caption_says():
    """ArviZ's default interval is 89%; the caption says 50% and 94%. On 20,000 draws of a
    standard normal, the outer interval spans 2 x 1.88 (94%), not 2 x 1.60 (89%)."""
    rng = np.random.default_rng(0)
    runs = {name: infer.Result.from_draws({"mu": rng.normal(size=(4, 5000))}) for name in "ab"}
    collection = infer.plot(runs, kind="forest")
    for model in "ab":
        outer = collection.viz["twig"]["mu"].sel(model=model).item().get_xdata()
        inner = collection.viz["trunk"]["mu"].sel(model=model).item().get_xdata()
        assert abs(np.ptp(outer) - 2 * 1.881) < 0.1 and abs(np.ptp(inner) - 2 * 0.674) < 0.05


def test_the_ess_plot_shows_the_tail_ess_and_the_line_compare_uses():
    """Its last tail point is compare's tail ESS (5%/95% quantiles, not ArviZ's default
    11%/89%), and its dashed line is at min_ess."""
    rng = np.random.default_rng(1)
    draws = np.cumsum(rng.standard_t(3, size=(4, 400)), axis=1) * 0.05 + rng.normal(size=(4, 400))
    result = infer.Result.from_draws({"x": draws})
    collection = infer.plot(result, kind="ess", min_ess=250)
    tail = collection.viz["ess_tail"]["x"].item().get_offsets()[-1, 1]
    expected = infer.compare({"run": result}, warn=False).loc["run", "min_ess_tail"]
    assert tail == pytest.approx(expected, rel=1e-6)
    line = collection.viz["min_ess"]["x"].item().get_ydata()
    assert np.allclose(line, 250) and "dash-dot: 250" in _title(collection)
    assert collection.viz["min_ess"]["x"].item().get_linestyle() == "-."


@pytest.mark.thorough  # an edge of the plots; make test draws every kind
def test_many_panels_are_drawn_past_arviz_subplot_limit():
    result = infer.Result.from_draws({"x": np.random.default_rng(2).normal(size=(2, 50, 50))})
    for kind in ("ess", "trace"):
        collection = infer.plot(result, kind=kind, max_panels=50)
        assert "of 50 components" not in _title(collection)


def test_a_reports_ess_captions_give_the_line_its_table_flags_at(tmp_path):
    from infer.report import write_report

    result = infer.Result.from_draws({"mu": np.random.default_rng(3).normal(size=(2, 50))})
    table = infer.compare({"run": result}, min_ess=200, warn=False)
    page = write_report({"run": result}, table, tmp_path / "report").read_text()
    assert "dash-dot: 200" in page and "400" not in page


def test_a_short_run_beside_a_long_one_leaves_the_long_runs_interval_as_it_is():
    """The runs were thinned to the shortest run's draws: a run of 40 draws beside one of
    4,000 drew the long run's 94% interval from 40 of its draws. Now the short run's draws
    are repeated instead, and the long run's interval is its own, within 0.1 of 2 x 1.881."""
    rng = np.random.default_rng(0)
    long = infer.Result.from_draws({"x": rng.standard_normal((4, 1000))})
    short = infer.Result.from_draws({"x": 5 + rng.standard_normal((1, 40))})
    collection = infer.plot([long, short], kind="forest")  # a list: named by sampler
    outer = collection.viz["twig"]["x"].sel(model="external").item().get_xdata()
    assert abs(np.ptp(outer) - 2 * 1.881) < 0.1
    short_mean = np.mean(short.draws["x"])  # each of its 40 draws 100 times
    estimate = collection.viz["point_estimate"]["x"].sel(model="external_2").item()
    assert estimate.get_offsets()[0, 0] == pytest.approx(short_mean, abs=1e-6)


def test_titles_name_what_the_figure_marks_and_the_parameters_it_cannot_show():
    rng = np.random.default_rng(1)
    with_nan = rng.standard_normal((2, 100))
    with_nan[0, 5] = np.nan
    odd = infer.Result.from_draws({"c": np.ones((2, 100)), "n": with_nan, "ok": with_nan + 1})
    title = _title(infer.plot(odd, kind="trace", var_names=["c", "n"]))
    assert "NaN draws in n" in title and "c: a component never changes" in title
    # an inf draw is left out of the lines without a word (a chain of them was said only
    # to never move)
    with_inf = infer.Result.from_draws({"i": np.where(with_nan == with_nan, with_nan, np.inf)})
    assert "inf draws in i: not drawn" in _title(infer.plot(with_inf, kind="trace"))
    # under 100 draws ArviZ draws ECDFs, which the caption called densities
    short = infer.Result.from_draws({"x": rng.standard_normal((2, 60))})
    assert "each chain's ECDF (too few draws" in _title(infer.plot(short, kind="trace"))
    assert "each chain's density" in _title(infer.plot(odd, kind="trace", var_names=["n"]))
    # a dist plot of runs of other lengths: the short run's density, drawn from its draws
    # repeated, was wiggly without a word
    long = infer.Result.from_draws({"x": rng.standard_normal((2, 1000))})
    short = infer.Result.from_draws({"x": rng.standard_normal((2, 100))})
    title = _title(infer.plot({"long": long, "short": short}, kind="dist"))
    assert "repeated to the longest's 2,000: their densities are drawn with too narrow" in title
    assert "repeated" not in _title(infer.plot({"a": long, "b": long}, kind="dist"))
    assert "divergences" not in title  # it records none
    plain = infer.Result.from_draws({"x": rng.standard_normal((2, 100))})
    assert "never changes" not in _title(infer.plot(plain, kind="trace"))
    assert "ground truth" not in _title(infer.plot({"a": plain, "b": plain}, kind="forest"))
    # a run that records divergences: marked where it has some, said to have none otherwise
    recorded = {"stats": {"diverging": np.zeros((2, 100), bool)}}
    calm = infer.Result.from_draws({"x": rng.standard_normal((2, 100))}, **recorded)
    assert "; no divergences" in _title(infer.plot(calm, kind="trace"))
    recorded["stats"]["diverging"][1, 40] = True
    rough = infer.Result.from_draws({"x": rng.standard_normal((2, 100))}, **recorded)
    assert "black ticks: divergences" in _title(infer.plot(rough, kind="trace"))


def test_the_pair_plots_axis_labels_fit_in_the_figure(runs):
    """Each label of a vector's component takes two lines ("theta" over "0"); the bottom
    row's second line fell below the figure's edge."""
    collection = infer.plot(runs["nuts"], kind="pair", var_names=["theta"], max_panels=3)
    figure = collection.get_viz("figure")
    figure = getattr(figure, "item", lambda: figure)()
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    labels = [ax.xaxis.label for ax in figure.axes if ax.get_xlabel()]
    assert labels and all(label.get_window_extent(renderer).y0 >= 0 for label in labels)


def _figure_of(collection):
    figure = collection.get_viz("figure")
    return getattr(figure, "item", lambda: figure)()


def _band_half_width(axis) -> float:
    """The largest |y| of the filled shapes (patches, polygons) on ``axis``, in data units."""
    from matplotlib.collections import PolyCollection

    heights = [
        np.abs(axis.transData.inverted().transform(patch.get_verts())[:, 1]).max()
        for patch in axis.patches
    ]
    for shape in axis.collections:
        if isinstance(shape, PolyCollection):
            heights += [np.abs(path.vertices[:, 1]).max() for path in shape.get_paths()]
    return max(heights)


def test_the_autocorrelation_band_is_white_noise_for_the_number_of_draws(tmp_path):
    """ArviZ drew +-1.96/sqrt(100) (the lags it keeps) whatever the run's length; on 1,000
    draws per chain white noise stays within +-1.96/sqrt(1000) = 0.062."""
    draws = np.random.default_rng(0).standard_normal((2, 1000, 2))
    collection = infer.plot(infer.Result.from_draws({"x": draws}), kind="autocorr")
    figure = _figure_of(collection)
    panels = [axis for axis in figure.axes if axis.get_visible() and axis.has_data()]
    assert len(panels) == 2
    for axis in panels:
        assert _band_half_width(axis) == pytest.approx(1.96 / np.sqrt(1000), rel=1e-6)
    assert "±1.96/√n: white noise" in figure.get_suptitle()
    assert "n = 1000: ±0.062" in figure.get_suptitle()
    infer.plot(infer.Result.from_draws({"x": draws}), kind="autocorr", path=tmp_path / "a.png")


@pytest.mark.parametrize("var_names", [None, ["dense.kernel"]])
def test_a_matrix_shows_its_first_components_in_row_major_order(var_names):
    """Only the first column was shown (w[0,0], w[1,0], w[2,0]) whatever max_panels; and
    var_names=["w"] drew another selection than the default. A pytree run's leaf too."""
    draws = {"dense.kernel": np.random.default_rng(0).normal(size=(2, 50, 3, 3))}
    result = infer.Result.from_draws(draws)
    collection = infer.plot(result, kind="trace", var_names=var_names)
    figure = _figure_of(collection)
    shown = [axis.get_ylabel().split("\n")[1] for axis in figure.axes if axis.get_ylabel()]
    assert shown == ["0, 0", "0, 1", "0, 2", "1, 0", "1, 1", "1, 2"]
    assert "the first 6 of 9 components" in figure.get_suptitle()
    two = _figure_of(infer.plot(result, kind="rank", var_names=var_names, max_panels=2))
    assert [axis.get_title() for axis in two.axes if axis.has_data()] == [
        "dense.kernel\n0, 0",
        "dense.kernel\n0, 1",
    ]


@pytest.mark.thorough  # an edge case, 2 s
def test_a_pair_plot_honours_max_panels_up_to_its_limit_and_says_so(runs):
    """It drew 4 components whatever max_panels, and said "max_panels= for others"."""
    title = _title(infer.plot(runs["nuts"], kind="pair", max_panels=8))
    assert "the first 6 of 18 components: a pair plot shows at most 6" in title
    figure = _figure_of(infer.plot(runs["nuts"], kind="pair", max_panels=5))
    labels = {ax.get_xlabel() for ax in figure.axes if ax.get_xlabel()}
    labels |= {ax.get_ylabel() for ax in figure.axes if ax.get_ylabel()}
    assert len(labels) == 5
    assert "the first 4 of 18" in _title(infer.plot(runs["nuts"], kind="pair"))  # default


def test_a_frozen_component_beside_nan_draws_is_named_and_its_ranks_called_ties():
    rng = np.random.default_rng(0)
    c = rng.standard_normal((2, 100, 2))
    c[..., 0] = 1.0  # frozen
    c[0, 5, 1] = np.nan
    title = _title(infer.plot(infer.Result.from_draws({"c": c}), kind="trace"))
    assert "NaN draws in c" in title and "c: a component never changes" in title
    frozen = c.copy()
    frozen[..., 1] = rng.standard_normal((2, 100))
    rank = _title(infer.plot(infer.Result.from_draws({"c": frozen}), kind="rank"))
    assert "c: a component never changes" in rank and "ranks all tie" in rank


def test_chains_stuck_at_their_own_values_are_named_and_arviz_warns_nothing(tmp_path):
    """Each chain constant at its index: an empty density without a word but ArviZ's."""
    x = np.random.default_rng(0).standard_normal((4, 100, 2))
    x[:, :, 1] = np.arange(4)[:, None]
    result = infer.Result.from_draws({"x": x})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        title = _title(infer.plot(result, kind="trace"))
        infer.plot(result, kind="trace", path=tmp_path / "stuck.png")
    assert "x: a chain never moves" in title and "never changes" not in title
    assert not [w for w in caught if "single value" in str(w.message)]


def test_the_figure_is_as_tall_as_the_panels_drawn_and_names_are_not_repeated(runs):
    """mu and 7 schools of theta are 8 panels (mu leaves theta the 3 of its even share it
    does not use; 5 were drawn): 2 rows of ranks, 8 rows of traces (it was sized for 4
    panels: one row, four)."""
    for kind, per_row, row in (("rank", 4, 2.2), ("trace", 1, 1.7)):
        figure = _figure_of(infer.plot(runs["nuts"], kind=kind, var_names=["mu", "theta"]))
        panels = sum(1 for ax in figure.axes if ax.has_data()) // (2 if kind == "trace" else 1)
        assert panels == 8
        rows = -(-panels // per_row)
        assert figure.get_size_inches()[1] == pytest.approx(1.0 + row * rows)
    with pytest.raises(ValueError, match=r"var_names repeats \['mu'\]: name each variable once"):
        infer.plot(runs["nuts"], kind="rank", var_names=["mu", "mu"])


def test_an_sbc_plot_of_one_parameter_is_wide_enough_for_its_title():
    from infer.calibration import SBCResult
    from infer.rank_uniformity import ecdf_pvalues

    ranks = np.random.default_rng(0).integers(0, 100, size=(50, 1))
    check = SBCResult(ranks, ["mu"], 99, 0.01, ecdf_pvalues(ranks, 99, 0.01), np.ones(1))
    figure = check.plot()
    figure.canvas.draw()
    title = figure._suptitle.get_window_extent(figure.canvas.get_renderer())
    assert title.x0 >= 0 and title.x1 <= figure.bbox.width  # it was cut on both sides


def test_var_names_and_path_of_the_wrong_type_are_refused_by_name(runs, tmp_path, monkeypatch):
    with pytest.raises(TypeError, match=r"var_names must be a str or a list/tuple of str; got int"):
        infer.plot(runs["nuts"], kind="trace", var_names=3)
    with pytest.raises(TypeError, match="var_names must be .*; got dict"):
        infer.plot(runs["nuts"], kind="trace", var_names={"mu": 1})
    with pytest.raises(TypeError, match=r"path must be a file path \(str or Path\); got int"):
        infer.plot(runs["nuts"], kind="trace", path=3)
    with pytest.raises(ValueError, match="is a folder; give a file path inside it"):
        infer.plot(runs["nuts"], kind="trace", path=tmp_path)
    import arviz_plots

    def drawn(*args, **kwargs):
        raise AssertionError("drawn before the path was checked")

    monkeypatch.setattr(arviz_plots, "plot_trace_dist", drawn)
    with pytest.raises(ValueError, match=r"must end in .png \(got '.pdf'\)"):
        infer.plot(runs["nuts"], kind="trace", path=tmp_path / "trace.pdf")


def test_a_ppc_shows_the_observed_variables_named_and_says_ecdf(runs):
    predictive = infer.predictive(runs["nuts"], targets.get("eight_schools"))
    observed = list(predictive.groups["posterior_predictive"])
    collection = infer.plot(predictive, kind="ppc", var_names=observed[0])
    assert "ECDF" in _title(collection)
    with pytest.raises(ValueError, match=r"\['mu'\] are not observed variables .*choose from"):
        infer.plot(predictive, kind="ppc", var_names="mu")


def test_arguments_the_kind_does_not_use_are_refused(runs):
    truth = infer.GroundTruth(mean={"mu": 0.0}, std={"mu": 1.0})
    with pytest.raises(ValueError, match=r"truth= marks the known answer in a forest plot"):
        infer.plot(runs["nuts"], kind="trace", truth=truth)
    with pytest.raises(ValueError, match=r"min_ess= draws the line of an ESS plot"):
        infer.plot(runs["nuts"], kind="rank", min_ess=100)


def test_the_docstring_says_what_each_kind_returns(runs):
    import matplotlib.figure

    figure = infer.plot(runs["advi"], kind="elbo")
    assert isinstance(figure, matplotlib.figure.Figure)
    returns = infer.plot.__doc__.split("Returns:")[1].split("Raises:")[0]
    assert '"elbo"' in returns and "Figure" in returns and "PlotCollection" in returns


@pytest.mark.parametrize("kind", ["forest", "dist"])
def test_the_title_stays_clear_of_the_legend_of_long_run_names(kind):
    """A forest of runs with long names had its legend (top right, beside the panels) drawn
    over the end of its title, which was centred on the whole figure."""
    rng = np.random.default_rng(0)
    names = ["ars", "rejection", "independent_mh_with_a_long_name", "hmc"]
    results = {name: infer.Result.from_draws({"x": rng.beta(2, 5, (2, 300))}) for name in names}
    collection = infer.plot(results, kind=kind)
    figure = collection.get_viz("figure")
    figure = getattr(figure, "item", lambda: figure)()
    figure.canvas.draw()  # the layout, as saving makes it
    renderer = figure.canvas.get_renderer()
    (title,) = [t for t in figure.texts if t.get_text() == figure.get_suptitle()]
    title = title.get_window_extent(renderer)
    legend = figure.legends[0].get_window_extent(renderer)
    assert title.x1 < legend.x0 or title.y0 > legend.y1


def test_the_rank_plots_p_value_is_drawn_over_the_chains(runs):
    """The chains' curves (and ArviZ's thick marks of those outside the band) ran through the
    p-value label; it is drawn on top, on a pale box."""
    figure = infer.plot(runs["nuts"], kind="rank", var_names=["mu"]).get_viz("figure")
    figure = getattr(figure, "item", lambda: figure)()
    (axis,) = figure.axes
    (label,) = [text for text in axis.texts if text.get_text().startswith("p=")]
    drawn = [artist.get_zorder() for artist in (*axis.lines, *axis.collections)]
    assert label.get_zorder() > max(drawn) and label.get_bbox_patch() is not None
