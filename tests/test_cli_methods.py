"""Methods as data on the command line: aliases equal their spelled-out form, any combination runs, options
and churn settings are validated with one line and exit 2."""

import json

from swarmplan.methods.registry import ALIASES


def test_an_alias_and_its_spelled_out_form_give_the_same_results(run_cli):
    code, out_a, _ = run_cli("simulate", "paper-abvt", "--method", "cg-bprr", "--requests", "30", "--json")
    code_b, out_b, _ = run_cli("simulate", "paper-abvt", "--method", "cg-bp+ws-rr", "--requests", "30", "--json")
    assert code == code_b == 0
    assert json.loads(out_a)["summary"] == json.loads(out_b)["summary"]


def test_a_new_combination_runs_in_compare(run_cli):
    code, out, err = run_cli(
        "compare", "paper-abvt", "--methods", "petals,cg-bp+petals-route,gbp-cr+ws-rr+retry", "--runs", "1", "--requests", "20"
    )
    assert code == 0, err
    assert "cg-bp+petals-route" in out and "gbp-cr+ws-rr+retry" in out


def test_methods_lists_every_alias_and_option(run_cli):
    code, out, _ = run_cli("methods", "--json")
    cat = json.loads(out)
    assert code == 0 and set(cat["aliases"]) == set(ALIASES)
    assert "time_limit_s" in cat["placements"]["milp"]["options"]


def test_bad_method_option_and_churn_input_exit_2_with_one_line(run_cli):
    cases = [
        (("compare", "--methods", "cg-bp+jffc+book", "--runs", "1"), "--methods"),
        (("compare", "--methods", "nope+ws-rr", "--runs", "1"), "--methods"),
        (("plan", "--method", "milp", "--option", "milp.time_limit_s=0"), "--option milp.time_limit_s"),
        (("plan", "--option", "cg-bp.nothing=1"), "--option cg-bp.nothing"),
        (("simulate", "--fail", "s99@10-20", "--requests", "5"), "churn.events[0].server"),
        (("simulate", "--fail", "s01@30-10", "--requests", "5"), "churn.events"),
        (("simulate", "--mtbf", "100", "--requests", "5"), "--downtime"),
    ]
    for args, field in cases:
        code, out, err = run_cli(*args)
        assert code == 2, args
        assert field in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)


def test_no_solution_is_told_apart_from_bad_input(run_cli):
    code, _, err = run_cli("plan", "paper-abvt", "--method", "cg-bp", "--R", "100000", "--no-quality")
    assert code == 2 and err.startswith("no solution:")


def test_compare_with_a_failure_schedule_reports_churn(run_cli):
    code, out, err = run_cli(
        "compare",
        "paper-abvt",
        "--methods",
        "petals,cg-bprr,gbp-cr",
        "--runs",
        "1",
        "--requests",
        "60",
        "--mtbf",
        "300",
        "--downtime",
        "60",
    )
    assert code == 0, err
    assert "churn: requests cut" in out and "churn: recomputed tokens" in out


def test_plan_shows_the_placement_of_any_method(run_cli):
    for method in ("opt-num", "opt-order", "cg-bprr"):
        code, out, err = run_cli("plan", "paper-abvt", "--method", method, "--json", "--no-quality")
        assert code == 0, err
        doc = json.loads(out[out.index("{") :])
        assert doc["servers"]
