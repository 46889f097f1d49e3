"""``rnnlab verify FILE`` without --convention: each registered convention tried, the most
specific that fits taken and said; a file that fits none gets each one's reason and a
Protocol skeleton that calls its functions. Also the targets' own refusals, and the note
on a NumPy subject that returns float32 for float64 inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab.errors import NoConventionFitsError, SubjectError
from rnnlab.testing import verify
from rnnlab.testing.loader import CONVENTIONS, REGISTRY, load
from rnnlab.testing.skeleton import protocol_skeleton

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "verify"
STUDENTS = ROOT / "tests" / "verify_subjects" / "students"

# every example pair and every student subject, with the convention it is written in
WRITTEN_IN = {
    EX / "cs231n_correct.py": "cs231n", EX / "cs231n_buggy.py": "cs231n",
    EX / "d2l_correct.py": "d2l", EX / "d2l_buggy.py": "d2l",
    EX / "d2l_classes_correct.py": "d2l", EX / "d2l_classes_buggy.py": "d2l",
    EX / "dlai_correct.py": "deeplearning.ai", EX / "dlai_buggy.py": "deeplearning.ai",
    EX / "min_char_rnn.py": "min-char-rnn", EX / "min_char_rnn_buggy.py": "min-char-rnn",
    EX / "torch_nn_correct.py": "torch.nn", EX / "torch_nn_buggy.py": "torch.nn",
    EX / "torch_gru_gates_correct.py": "torch.nn", EX / "torch_gru_gates_buggy.py": "torch.nn",
    EX / "torch_batch_first_correct.py": "torch.nn", EX / "torch_batch_first_buggy.py": "torch.nn",
    EX / "torch_tutorial_correct.py": "torch-tutorial", EX / "torch_tutorial_buggy.py": "torch-tutorial",
    EX / "torch_tutorial_charrnn.py": "torch-tutorial",
    EX / "torch_tutorial_charrnn_buggy.py": "torch-tutorial",
    STUDENTS / "tutorial_no_tanh.py": "torch-tutorial",
    STUDENTS / "tutorial_tanh_only.py": "torch-tutorial",
    STUDENTS / "d2l_class_default_shape.py": "d2l",
    STUDENTS / "gru_reset_reads_update.py": "d2l",
    STUDENTS / "lstm_forget_on_h.py": "d2l",
    STUDENTS / "lstm_output_gate_unused.py": "d2l",
    STUDENTS / "min_char_args.py": "min-char-rnn",
    STUDENTS / "min_char_dict_buggy.py": "min-char-rnn",
    STUDENTS / "rnn_detach_each_step.py": "d2l",
    STUDENTS / "rnn_no_output_bias.py": "d2l",
    STUDENTS / "rnn_outputs_detached.py": "d2l",
    STUDENTS / "rnn_relu.py": "d2l",
    STUDENTS / "rnn_transposed_recurrence.py": "d2l",
    STUDENTS / "torch_nn_ones_default.py": "torch.nn",
    STUDENTS / "cs231n_rnn_transposed_forward.py": "cs231n",
    STUDENTS / "dlai_lstm_dc_prev_from_dc_next.py": "deeplearning.ai",
    STUDENTS / "dlai_lstm_wy.py": "deeplearning.ai",
    STUDENTS / "min_char_loop_skips_first.py": "min-char-rnn",
    STUDENTS / "min_char_no_output_bias.py": "min-char-rnn",
    STUDENTS / "rnn_h0_every_step.py": "d2l",
    STUDENTS / "cs231n_rnn_h0_every_step.py": "cs231n",
    STUDENTS / "min_char_hprev_every_step.py": "min-char-rnn",
    STUDENTS / "rnn_returns_first_state.py": "d2l",
    STUDENTS / "min_char_returns_hprev.py": "min-char-rnn",
    STUDENTS / "cs231n_rnn_dh0_upstream.py": "cs231n",
    STUDENTS / "cs231n_rnn_grads_mean.py": "cs231n",
    STUDENTS / "min_char_dWhh_not_accumulated.py": "min-char-rnn",
    STUDENTS / "min_char_own_size_names.py": "min-char-rnn",
    STUDENTS / "cs231n_lstm_correct_dict_cache.py": "cs231n",
    STUDENTS / "cs231n_lstm_do_no_sigmoid_grad.py": "cs231n",
    STUDENTS / "cs231n_lstm_dprev_c_without_f.py": "cs231n",
    STUDENTS / "cs231n_lstm_dc_without_o.py": "cs231n",
    STUDENTS / "cs231n_rnn_dtanh_prev_h.py": "cs231n",
    STUDENTS / "gru_update_gate_tanh.py": "d2l",
    STUDENTS / "gru_no_reset_bias.py": "d2l",
    STUDENTS / "gru_no_direct_term.py": "d2l",
    STUDENTS / "lstm_state_never_updated.py": "d2l",
    STUDENTS / "lstm_cell_update_i_f_swapped.py": "d2l",
    STUDENTS / "lstm_returns_c_h.py": "d2l",
    STUDENTS / "grucell_h_n_without_layer_axis.py": "torch.nn",
    STUDENTS / "rnn_output_before_update.py": "d2l",
    STUDENTS / "rnn_no_tanh.py": "d2l",
    STUDENTS / "gru_linear_weight_bhn_outside.py": "torch.nn",
    STUDENTS / "gru_reset_without_hidden_term.py": "d2l",
    STUDENTS / "dlai_lstm_da_prev_without_o.py": "deeplearning.ai",
    STUDENTS / "rnn_tanh_on_input_only.py": "d2l",
    STUDENTS / "lstm_detach_h_each_step.py": "d2l",
    STUDENTS / "linear_gru_loops_over_batch_axis.py": "torch.nn",
    STUDENTS / "d2l_class_rnn_default_ones_on_a_base.py": "d2l",  # its base class is no cell
    STUDENTS / "cs231n_lstm_df_from_dnext_c.py": "cs231n",
    STUDENTS / "cs231n_lstm_stores_c_as_h.py": "cs231n",
    STUDENTS / "cs231n_rnn_dprev_h_without_tanh.py": "cs231n",
    STUDENTS / "dlai_lstm_dW_concat_x_first.py": "deeplearning.ai",
    STUDENTS / "dlai_rnn_bias_after_tanh.py": "deeplearning.ai",
    STUDENTS / "min_char_input_from_targets.py": "min-char-rnn",
    STUDENTS / "cs231n_lstm_dprev_c_from_dnext_c.py": "cs231n",
    STUDENTS / "cs231n_lstm_gate_grads_from_dnext_c.py": "cs231n",
    STUDENTS / "cs231n_lstm_tanh_derivative_squared.py": "cs231n",
    STUDENTS / "cs231n_rnn_cache_previous_step.py": "cs231n",
    STUDENTS / "cs231n_rnn_carry_starts_at_last_dh.py": "cs231n",
    STUDENTS / "cs231n_rnn_dh0_adds_first_dh.py": "cs231n",
    STUDENTS / "d2l_class_lstm_default_cell_ones.py": "d2l",
    STUDENTS / "dlai_lstm_concat_x_first.py": "deeplearning.ai",
    STUDENTS / "dlai_lstm_concat_x_first_split_unchanged.py": "deeplearning.ai",
    STUDENTS / "dlai_lstm_dconcat_x_first.py": "deeplearning.ai",
    STUDENTS / "dlai_lstm_predicts_from_c.py": "deeplearning.ai",
    STUDENTS / "dlai_rnn_caches_reversed.py": "deeplearning.ai",
    STUDENTS / "dlai_rnn_dWax_mean.py": "deeplearning.ai",
    STUDENTS / "dlai_rnn_dWax_transposed.py": "deeplearning.ai",
    STUDENTS / "dlai_rnn_da_last_step_only.py": "deeplearning.ai",
    STUDENTS / "dlai_rnn_softmax_over_batch.py": "deeplearning.ai",
    STUDENTS / "gru_reset_on_input.py": "d2l",
    STUDENTS / "lstm_candidate_tanh_twice.py": "d2l",
    STUDENTS / "lstm_coupled_input_gate.py": "d2l",
    STUDENTS / "lstm_forget_bias_plus_one.py": "d2l",
    STUDENTS / "lstm_h_before_c.py": "d2l",
    STUDENTS / "lstm_h_tanh_of_product.py": "d2l",
    STUDENTS / "lstmcell_state_unpacked_c_h.py": "torch.nn",
    STUDENTS / "min_char_minus_one_at_input.py": "min-char-rnn",
    STUDENTS / "min_char_no_dby.py": "min-char-rnn",
    STUDENTS / "rnn_bias_after_tanh.py": "d2l",
    STUDENTS / "torch_gru_fused_linear_reset_whole.py": "torch.nn",
    STUDENTS / "torch_lstm_gate_params_no_b_hf.py": "torch.nn",
    STUDENTS / "torch_lstm_gate_params_no_hidden_biases.py": "torch.nn",
    STUDENTS / "torch_lstm_gate_params_state_layer_axis.py": "torch.nn",
    STUDENTS / "torch_lstm_linears_forget_reads_input_gate_layer.py": "torch.nn",
    STUDENTS / "cs231n_lstm_df_sigmoid_mixed.py": "cs231n",
    STUDENTS / "cs231n_lstm_df_from_prev_h.py": "cs231n",
    STUDENTS / "cs231n_lstm_dg_from_tanh_c.py": "cs231n",
    STUDENTS / "dlai_lstm_concat_x_first_in_forward.py": "deeplearning.ai",
    STUDENTS / "torch_lstm_gate_params_output_reads_b_hf.py": "torch.nn",
    STUDENTS / "min_char_carry_after_tanh_derivative.py": "min-char-rnn",
    STUDENTS / "lstm_output_gate_bias_after_sigmoid.py": "d2l",
    STUDENTS / "gru_linear_reset_paren_closed_early.py": "torch.nn",
    STUDENTS / "dlai_lstm_forget_bias_after_sigmoid.py": "deeplearning.ai",
    STUDENTS / "cs231n_rnn_weight_grads_without_tanh.py": "cs231n",
    STUDENTS / "dlai_lstm_dit_without_dc_next.py": "deeplearning.ai",
    STUDENTS / "d2l_class_default_state_steps_for_batch.py": "d2l",
    STUDENTS / "d2l_class_default_state_random.py": "d2l",
    STUDENTS / "gru_update_one_minus_reset.py": "d2l",
    STUDENTS / "d2l_lstm_h_from_candidate.py": "d2l",
    STUDENTS / "d2l_class_lstm_returns_candidate_as_cell.py": "d2l",
    STUDENTS / "torch_lstm_gate_params_output_reads_c.py": "torch.nn",
    STUDENTS / "dlai_softmax_shift_per_column_sum_all.py": "deeplearning.ai",
    STUDENTS / "dlai_lstm_a_next_from_c_prev.py": "deeplearning.ai",
    STUDENTS / "dlai_lstm_da_prev_overwritten.py": "deeplearning.ai",
    STUDENTS / "min_char_backward_skips_last_step.py": "min-char-rnn",
    STUDENTS / "min_char_loss_reads_input.py": "min-char-rnn",
    STUDENTS / "dlai_rnn_dWaa_never_accumulated.py": "deeplearning.ai",
    STUDENTS / "dlai_lstm_dconcat_overwritten.py": "deeplearning.ai",
    STUDENTS / "torch_gru_linears_update_reads_reset_x.py": "torch.nn",
    STUDENTS / "torch_gru_linears_reset_after_tanh.py": "torch.nn",
    STUDENTS / "torch_gru_linears_reset_inverted.py": "torch.nn",
    STUDENTS / "torch_lstm_params_cell_squashed.py": "torch.nn",
    STUDENTS / "rnn_final_state_one_step_early.py": "d2l",
    STUDENTS / "lstmcell_returns_tanh_c.py": "torch.nn",
    STUDENTS / "gru_linear_einsum_bhn_outside.py": "torch.nn",
    STUDENTS / "torch_gru_gate_params_bhn_outside.py": "torch.nn",
    STUDENTS / "torch_gru_gate_params_candidate_gated_by_z.py": "torch.nn",
    STUDENTS / "torch_gru_gate_params_reset_reads_W_iz.py": "torch.nn",
    STUDENTS / "torch_gru_gate_params_W_hn_untransposed.py": "torch.nn",
}

# a student's own layout (time-major, weights as arguments): fits no convention
MINE = (EX / "time_major_rnn.py").read_bytes()
DONE = "            np.concatenate([dHs[:-1], dHs[-1:] + dstate[0]]),  # done: H_T's gradient added"


def _cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "rnnlab", "verify", *map(str, args), "--no-progress"],
                          capture_output=True, text=True, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          timeout=300, check=False)


SUBJECTS = ROOT / "tests" / "verify_subjects"
# a target naming one function or class, where names and arity alone would fit others too
NAMED = {
    f"{SUBJECTS / 'torch_nn_variants.py'}:RNN64": "torch.nn",  # its name says rnn: not d2l's RNNScratch
    f"{SUBJECTS / 'torch_nn_variants.py'}:GRUCellLoop": "torch.nn",
    f"{SUBJECTS / 'torch_nn_builtin.py'}:TorchGRU": "torch.nn",
    f"{SUBJECTS / 'torch_nn_builtin.py'}:rnn_factory": "torch.nn",
    f"{SUBJECTS / 'torch_nn_gates.py'}:D2LFormGRU": "torch.nn",  # one nn.Linear per gate
    f"{SUBJECTS / 'torch_nn_gates.py'}:GateLSTM": "torch.nn",
    f"{SUBJECTS / 'torch_nn_options.py'}:BatchFirstGRU": "torch.nn",  # three sizes, not the tutorial's
    f"{EX / 'd2l_correct.py'}:lstm": "d2l",  # three arguments, as lossFun's: not min-char-rnn
    f"{EX / 'd2l_classes_buggy.py'}:LSTMScratch": "d2l",
    f"{EX / 'cs231n_correct.py'}:rnn_forward": "cs231n",
    str(SUBJECTS / "min_char_rnn_py2.py"): "min-char-rnn",  # Python 2: read as a script
}


@pytest.mark.parametrize("target", [*WRITTEN_IN, *NAMED], ids=lambda p: Path(str(p)).name)
def test_each_example_and_student_is_found_in_its_convention(target):
    """Finding the convention adapts the units and runs each once: no property runs (in
    this process, as the child process of `rnnlab verify` does)."""
    path = Path(str(target).rsplit(":", 1)[0]) if str(target) in NAMED else target
    if "torch" in path.read_text(encoding="utf-8"):
        pytest.importorskip("torch")
    loaded = load(str(target), None, None)
    try:
        want = WRITTEN_IN.get(target) or NAMED[str(target)]
        assert {u.convention for u in loaded.units} == {want}
        note = next(n for n in loaded.notes if n.startswith("fits the "))
        assert note.startswith(f"fits the {want} convention: {', '.join(loaded.found)} found")
    finally:
        loaded.close()


def test_a_file_fitting_several_conventions_is_checked_under_the_most_specific(tmp_path):
    both = tmp_path / "both.py"
    both.write_bytes((EX / "cs231n_correct.py").read_bytes() + b"\n"
                     + (EX / "d2l_correct.py").read_bytes())
    assert REGISTRY["cs231n"] < REGISTRY["d2l"]
    r = verify(str(both), max_examples=1, cell="rnn")
    assert r.convention == "cs231n" and r.ok, r.render()
    assert any(n.startswith("fits the cs231n convention: rnn_step_forward") and
               "it fits d2l too, and cs231n is the more specific" in n for n in r.notes), r.notes
    head = r.render().splitlines()[0]
    assert head.startswith("rnnlab verify both.py --convention cs231n ")  # the command to rerun


def test_the_file_is_tried_in_the_child_process_only(tmp_path):
    marker = tmp_path / "imported_by"
    src = (EX / "d2l_correct.py").read_text(encoding="utf-8")
    (tmp_path / "mine.py").write_text(f"import os\nopen({str(marker)!r}, 'a').write(str(os.getpid()) "
                                      f"+ '\\n')\n{src}", encoding="utf-8")
    before = set(sys.modules)
    r = verify(str(tmp_path / "mine.py"), max_examples=1, cell="rnn")
    assert r.ok and r.convention == "d2l", r.render()
    pids = marker.read_text().split()
    assert pids and str(os.getpid()) not in pids  # imported once, by the child, never here
    assert len(pids) == 1
    assert not [m for m in set(sys.modules) - before if m.startswith("rnnlab_subject_")]


def test_none_fits_gives_each_conventions_reason_in_the_registrys_order(tmp_path):
    (tmp_path / "mine.py").write_bytes(MINE)
    with pytest.raises(NoConventionFitsError) as e:
        verify(str(tmp_path / "mine.py"))
    assert [c for c, _ in e.value.tried] == list(CONVENTIONS)
    why = dict(e.value.tried)
    assert "none of rnn_step_forward" in why["cs231n"] and "lossFun" in why["min-char-rnn"]
    assert "\n" not in str(e.value) and "--convention protocol" in str(e.value)
    # named: each convention is held to that function, and none calls it without its arguments
    with pytest.raises(NoConventionFitsError) as e:
        verify(str(tmp_path / "mine.py") + ":my_rnn_forward")
    why = dict(e.value.tried)
    assert [c for c, _ in e.value.tried] == list(CONVENTIONS)
    assert why["d2l"].startswith("my_rnn_forward(inputs, state, params) expected")
    assert why["protocol"] == ("my_rnn_forward is not an rnnlab.testing.Protocol, nor a function that "
                               "makes one without arguments: it takes (x, h0, Wx, Wh, b) (protocol "
                               "convention)")


def test_none_fits_on_the_command_line_prints_a_skeleton_that_checks_once_edited(tmp_path):
    (tmp_path / "mine.py").write_bytes(MINE)
    r = _cli("mine.py", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    err = r.stderr.splitlines()
    assert err[0] == "rnnlab: error: mine.py fits none of rnnlab's conventions:"
    assert [ln.split(":")[0].strip() for ln in err[1:1 + len(CONVENTIONS)]] == list(CONVENTIONS)
    assert "--convention protocol" in err[-1] and "Wrap your code in a Protocol" in err[-1]
    skeleton = r.stdout
    assert skeleton == protocol_skeleton(tmp_path / "mine.py", MINE.decode())
    assert "mine.my_rnn_forward(" in skeleton and "mine.my_rnn_backward(" in skeleton
    assert "dx, dh0, dWx, dWh, db = out" in skeleton and "dstate_0 = (dh0,)" in skeleton
    assert '"Wx": fused("W_x", "h", CELL)' in skeleton and "TODO" in skeleton
    # as printed, it loads and runs under the protocol convention (exit 0 or 1, never 2)
    (tmp_path / "mine_protocol.py").write_text(skeleton, encoding="utf-8")
    r1 = _cli("mine_protocol.py", "--convention", "protocol", "--max-examples", "2", cwd=tmp_path)
    assert r1.returncode in (0, 1), r1.stderr
    # its one TODO that this file needs: the final state's gradient added to dHs' last step
    todo = [ln for ln in skeleton.splitlines() if ln.strip().startswith("dHs,  # TODO")]
    assert len(todo) == 1
    edited = skeleton.replace(todo[0], DONE)
    (tmp_path / "mine_protocol.py").write_text(edited, encoding="utf-8")
    r2 = _cli("mine_protocol.py", "--max-examples", "3", cwd=tmp_path)
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert "fits the protocol convention" in r2.stdout


def test_the_wrapped_example_is_the_skeleton_with_that_one_line_done():
    skeleton = protocol_skeleton(EX / "time_major_rnn.py", MINE.decode())
    todo = next(ln for ln in skeleton.splitlines() if ln.strip().startswith("dHs,  # TODO"))
    assert (EX / "time_major_rnn_protocol.py").read_text(encoding="utf-8") == skeleton.replace(todo, DONE)


def test_the_skeleton_is_python_for_any_file(tmp_path):
    for name, text in [("min-char.py", "def f(a, b):\n    return a\n"), ("empty.py", ""),
                       ("broken.py", "def f(:\n"),
                       ("cell.py", ("class MyGRU:\n    def forward(self, x):\n        return x\n"))]:
        skeleton = protocol_skeleton(tmp_path / name, text)
        compile(skeleton, name, "exec")
        assert "subject = Protocol(CELL" in skeleton
    assert 'CELL = "gru"' in protocol_skeleton(tmp_path / "cell.py", "class MyGRU:\n    pass\n")
    assert 'spec_from_file_location("yours"' in protocol_skeleton(tmp_path / "min-char.py", "")


def test_many_files_without_a_convention_each_found_or_refused(tmp_path):
    (tmp_path / "mine.py").write_bytes(MINE)
    r = _cli(EX / "cs231n_correct.py", EX / "dlai_correct.py", tmp_path / "mine.py",
             "--max-examples", "1", "--json", "--cell", "rnn")
    assert r.returncode == 2, r.stderr
    rows = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [(x["verdict"], x["report"] and x["report"]["convention"]) for x in rows] == [
        ("PASS", "cs231n"), ("PASS", "deeplearning.ai"), ("ERROR", None)]
    assert rows[2]["reason"] == "mine.py fits none of rnnlab's conventions:"


def test_an_unknown_convention_is_refused_before_any_file_is_read(tmp_path):
    for files in ([tmp_path / "nothing_here.py"], [EX / "cs231n_correct.py", EX / "d2l_correct.py"]):
        r = _cli(*files, "--convention", "keras")
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert r.stderr.strip() == ("rnnlab: error: unknown convention 'keras'; expected one of "
                                    + ", ".join(CONVENTIONS)) and r.stdout == ""


def test_the_command_line_reads_the_loaders_registry():
    import argparse

    import rnnlab.cli.verify as cli

    assert not hasattr(cli, "CONVENTIONS")  # no copy to fall out of step
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    help_text = " ".join(parser._subparsers._group_actions[0].choices["verify"].format_help().split())
    for convention in CONVENTIONS:  # the help names each registered convention
        assert f" {convention} (" in help_text, convention


@pytest.mark.parametrize("suffix,message", [
    (":N", "ok.py:N is an int, not a function or class"),
    (":V", "ok.py:V is None, not a function or class"),
    (":", "has nothing after the colon; give a function or class of ok.py (ok.py:NAME)"),
    (":123", "has '123' after the colon, which is not a Python name"),
    (":nothere", "ok.py has no function or class 'nothere'; it defines my_rnn_forward, Cell"),
])
def test_a_target_names_its_problem(tmp_path, suffix, message):
    (tmp_path / "ok.py").write_text("N = 3\nV = None\ndef my_rnn_forward(x):\n    return x\n"
                                    "class Cell:\n    pass\n", encoding="utf-8")
    for convention in (None, "cs231n", "d2l", "protocol"):
        with pytest.raises(SubjectError) as e:
            verify(str(tmp_path / "ok.py") + suffix, convention)
        assert message in str(e.value), (convention, str(e.value))
    with pytest.raises(SubjectError, match="^the target is empty"):
        verify("")


def test_a_numpy_subject_returning_float32_is_noted_by_array():
    r = verify(str(ROOT / "tests" / "verify_subjects" / "cs231n_float32.py"), "cs231n", max_examples=1)
    assert r.ok, r.render()
    notes = {u.name: [n for n in u.notes if "float32 for float64" in n] for u in r.units}
    assert notes["rnn_forward / rnn_backward"] == [(
        "your code returns float32 for float64 inputs (h, dx, dh0, dWx, dWh, db): it is held to "
        "float32's tolerances, 2e-5, not float64's 1e-9, and a gradient check in float64 "
        "(CS231n's rel_error, ~1e-8) would see its round-off")]
    assert all(u.dtype == "float32" for u in r.units)
    plain = verify(str(EX / "cs231n_correct.py"), "cs231n", cell="rnn", max_examples=1)
    assert not [n for u in plain.units for n in u.notes if "float32" in n]


def test_a_target_with_constructor_arguments_is_read_as_a_torch_nn_class():
    """FILE:NAME(key=value): only a torch.nn module class is given constructor arguments, so
    no other convention is tried; the arguments reach the class (batch_first here)."""
    pytest.importorskip("torch")
    loaded = load(f"{EX / 'torch_batch_first_correct.py'}:BatchLSTM(batch_first=True)", None, None)
    try:
        (unit,) = loaded.units
        assert unit.convention == "torch.nn" and unit.batch_first
    finally:
        loaded.close()
