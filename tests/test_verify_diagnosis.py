"""The diagnosis on subjects written as students write them, gradients by real autograd.

The planted subjects of tests/test_mutants.py compute each mistake with the spec's own
rules, so they prove the diagnosis reads the catalogue; they cannot prove that a catalogue
entry is what the mistake really does. Here each subject is ordinary d2l-style torch
code with one mistake, its gradients by torch autograd: the diagnosis must name exactly
that mistake, or, for a mistake the catalogue does not hold, name nothing and say where
the error lies (a wrong name sends a student to change code that is right).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from rnnlab.testing import verify  # noqa: E402

HERE = Path(__file__).resolve().parent / "verify_subjects" / "students"
FAST = dict(max_examples=6, seed=0)

NAMED = [  # file, the one mistake the diagnosis must name, the arrays that must differ
    ("rnn_detach_each_step.py", "state-detached-after-each-step", {"W_xh.grad", "H_0.grad"}),
    ("rnn_outputs_detached.py", "outputs-detached", {"W_xh.grad"}),
    ("gru_reset_reads_update.py", "gru-r-from-z-weights", {"outputs"}),
    ("lstm_forget_on_h.py", "lstm-forget-gate-on-H", {"outputs"}),
    ("rnn_transposed_recurrence.py", "recurrent-weight-transposed", {"outputs"}),
    ("rnn_no_output_bias.py", "output-bias-missing", {"outputs"}),
    ("rnn_h0_every_step.py", "initial-state-every-step", {"outputs"}),
    ("rnn_returns_first_state.py", "first-state-returned", {"H_T"}),
    ("torch_gru_bhn_outside.py", "gru-b_hn-outside-reset", {"output", "bias_hh_l0.grad"}),
    ("gru_candidate_uses_update.py", "gru-r-from-z-weights", {"outputs"}),
    ("torch_lstm_gate_params_forget_on_h.py", "lstm-forget-gate-on-H", {"output", "W_hf.grad"}),
    # read in torch.nn's form only when the form is read off step() as well as forward()
    ("gru_step_method_update_for_reset.py", "gru-r-from-z-weights", {"output"}),
    ("lstmcell_collects_c.py", "lstm-outputs-C", {"output", "lstm_cell.weight_ih.grad"}),
    ("grucell_returns_given_state.py", "first-state-returned", {"h_n", "h_0.grad"}),
    ("lstm_output_gate_unused.py", "lstm-output-gate-unused", {"outputs", "W_xo.grad"}),
    ("lstm_state_never_updated.py", "initial-state-every-step", {"outputs"}),
    ("gru_update_gate_tanh.py", "gru-z-gate-tanh", {"outputs"}),
    ("gru_no_reset_bias.py", "gru-b_r-missing", {"outputs", "b_r.grad"}),
    ("gru_no_direct_term.py", "gru-forward-without-direct-term", {"outputs"}),
    ("lstm_cell_update_i_f_swapped.py", "lstm-gates-i-f-swapped", {"outputs"}),
    ("lstm_returns_c_h.py", "lstm-final-state-swapped", {"H_T", "C_T"}),
    ("rnn_output_before_update.py", "output-one-step-late", {"outputs"}),
    ("rnn_no_tanh.py", "linear-recurrence", {"outputs"}),
    ("rnn_relu.py", "candidate-relu", {"outputs"}),
    ("lstm_detach_h_each_step.py", "lstm-hidden-state-detached-each-step", {"H_0.grad"}),
    ("gru_reset_without_hidden_term.py", "gru-r-recurrent-term-missing", {"outputs", "W_hr.grad"}),
    ("rnn_bias_after_tanh.py", "rnn-bias-after-tanh", {"outputs", "b_h.grad"}),
    ("lstm_h_before_c.py", "lstm-h-from-previous-cell", {"outputs"}),
    ("lstm_candidate_tanh_twice.py", "candidate-tanh-twice", {"outputs"}),
    ("gru_reset_on_input.py", "gru-reset-on-input-term", {"outputs"}),
    ("lstmcell_state_unpacked_c_h.py", "lstm-initial-state-swapped", {"output", "h_0.grad"}),
    ("lstm_coupled_input_gate.py", "lstm-input-gate-as-one-minus-forget", {"outputs"}),
    ("lstm_forget_bias_plus_one.py", "lstm-forget-bias-plus-one", {"outputs"}),
    ("lstm_h_tanh_of_product.py", "lstm-h-tanh-of-o-times-c", {"outputs"}),
    ("torch_gru_fused_linear_reset_whole.py", "gru-reset-on-whole-candidate", {"output"}),
    # one side of the biases torch.nn keeps in two arrays, left out
    ("torch_lstm_gate_params_no_b_hf.py", "lstm-f-hidden-side-bias-missing", {"output", "b_hf.grad"}),
    ("torch_lstm_gate_params_no_hidden_biases.py", "hidden-side-biases-missing", {"output", "b_hi.grad"}),
    ("torch_lstm_linears_forget_reads_input_gate_layer.py", "lstm-f-reads-i-hidden-layer",
     {"output", "h2f.weight.grad"}),
    # the right numbers in the wrong shape: h_n without its layer axis, or every output
    # with one more (the state's, broadcast): windows of such outputs cannot be joined in time
    ("grucell_h_n_without_layer_axis.py", "state-without-layer-axis", {"h_n"}),
    ("torch_lstm_gate_params_state_layer_axis.py", "right-numbers-other-shape", {"output"}),
    # a GRU of one nn.Parameter (or layer weight) per gate, its form read off the matmul
    # that uses the candidate's hidden-side weight
    ("gru_linear_weight_bhn_outside.py", "gru-b_hn-outside-reset", {"output", "h2n.bias.grad"}),
    ("torch_gru_gate_params_bhn_outside.py", "gru-b_hn-outside-reset", {"output", "b_hn.grad"}),
    ("torch_gru_gate_params_candidate_gated_by_z.py", "gru-r-from-z-weights", {"output"}),
    ("torch_gru_gate_params_reset_reads_W_iz.py", "gru-r-reads-W_xz", {"output", "W_ir.grad"}),
    ("torch_gru_gate_params_W_hn_untransposed.py", "gru-h-recurrent-weight-transposed",
     {"output", "W_hn.grad"}),
    ("torch_lstm_gate_params_output_reads_b_hf.py", "lstm-o-reads-b_f-hidden-half",
     {"output", "b_ho.grad"}),
    # a parenthesis closed early in one gate's line
    ("lstm_output_gate_bias_after_sigmoid.py", "lstm-o-bias-after-activation", {"outputs"}),
    ("gru_linear_reset_paren_closed_early.py", "gru-r-hidden-layer-after-activation",
     {"output", "x_reset.bias.grad"}),
    ("gru_update_one_minus_reset.py", "gru-update-one-minus-r", {"outputs"}),
    ("d2l_lstm_h_from_candidate.py", "lstm-h-from-candidate", {"H_T", "W_hc.grad"}),
    ("d2l_class_lstm_returns_candidate_as_cell.py", "lstm-final-cell-state-candidate", {"C_T"}),
    ("torch_lstm_gate_params_output_reads_c.py", "lstm-o-reads-c-prev", {"W_ho.grad"}),
    # a GRU of nn.Linear layers whose hidden-side layers for r and z have no bias (each of
    # those gates' bias whole, on its input-side layer)
    ("torch_gru_linears_update_reads_reset_x.py", "gru-z-reads-r-input-layer",
     {"output", "update_x.bias.grad"}),
    ("torch_gru_linears_reset_after_tanh.py", "gru-reset-after-tanh", {"output"}),
    ("torch_gru_linears_reset_inverted.py", "gru-reset-inverted", {"output"}),
    ("torch_lstm_params_cell_squashed.py", "lstm-cell-state-squashed", {"output"}),
    ("lstmcell_returns_tanh_c.py", "lstm-final-cell-state-tanh", {"c_n"}),
    ("rnn_final_state_one_step_early.py", "final-state-one-step-early", {"H_T"}),
]
CONVENTION = {"torch_gru_bhn_outside.py": "torch.nn",  # the others are d2l's
              "torch_lstm_gate_params_forget_on_h.py": "torch.nn",
              "gru_step_method_update_for_reset.py": "torch.nn", "lstmcell_collects_c.py": "torch.nn",
              "grucell_returns_given_state.py": "torch.nn",
              "grucell_h_n_without_layer_axis.py": "torch.nn",
              "lstmcell_state_unpacked_c_h.py": "torch.nn",
              "torch_gru_fused_linear_reset_whole.py": "torch.nn",
              "torch_lstm_gate_params_no_b_hf.py": "torch.nn",
              "torch_lstm_gate_params_no_hidden_biases.py": "torch.nn",
              "torch_lstm_gate_params_state_layer_axis.py": "torch.nn",
              "torch_lstm_linears_forget_reads_input_gate_layer.py": "torch.nn",
              **dict.fromkeys(["gru_linear_weight_bhn_outside.py", "lstmcell_returns_tanh_c.py",
                               "torch_lstm_gate_params_output_reads_b_hf.py",
                               "gru_linear_reset_paren_closed_early.py",
                               "torch_lstm_gate_params_output_reads_c.py",
                               "torch_gru_linears_update_reads_reset_x.py",
                               "torch_gru_linears_reset_after_tanh.py",
                               "torch_gru_linears_reset_inverted.py",
                               "torch_lstm_params_cell_squashed.py",
                               "torch_gru_gate_params_bhn_outside.py",
                               "torch_gru_gate_params_candidate_gated_by_z.py",
                               "torch_gru_gate_params_reset_reads_W_iz.py",
                               "torch_gru_gate_params_W_hn_untransposed.py"], "torch.nn")}


def _subject(name: str, as_file: bool):
    """The student's file as verify reads it from the command line (a child process), or,
    for the names and notes alone, imported here as a module the way a user's own would be
    (a second a subject saved: the child imports torch anew)."""
    if as_file:
        return str(HERE / name)
    module_name = f"rnnlab_student_{Path(name).stem}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, HERE / name)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # where inspect finds a class's source
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def _named(report) -> set:
    return {n for u in report.units for m in u.diagnosis if m.full for n in m.mistakes}


@pytest.mark.parametrize("name,mistake,arrays", NAMED, ids=[n[0] for n in NAMED])
def test_a_students_mistake_is_named_exactly(name, mistake, arrays):
    r = verify(_subject(name, name == NAMED[0][0]), CONVENTION.get(name, "d2l"), **FAST)
    assert not r.ok, r.render()
    assert _named(r) == {mistake}, r.render()
    differing = {d.quantity for u in r.units for p in u.properties for d in p.differences}
    assert differing & arrays, r.render()


UNKNOWN = [  # file, what the note must say about where the error lies
    # time steps counted from 0, as the arrays index them and the properties' reports count
    ("rnn_tanh_on_input_only.py", "the forward already differs (H_T, outputs, from time step 0 on)"),
]


@pytest.mark.parametrize("name,where", UNKNOWN, ids=[n[0] for n in UNKNOWN])
def test_a_mistake_the_catalogue_lacks_is_not_given_a_wrong_name(name, where):
    r = verify(str(HERE / name), "d2l", **FAST)
    assert not r.ok
    assert _named(r) == set(), r.render()
    text = r.render()
    assert "no known mistake reproduces every array" in text and where in text, text
    assert "known mistake " not in text.replace("no known mistake", ""), text


def test_an_uncatalogued_forward_is_located_in_the_forward():
    """Every gradient is right for the forward the code computes: the note says so."""
    r = verify(str(HERE / "rnn_tanh_on_input_only.py"), "d2l", **FAST)
    assert "look at the forward" in r.render(), r.render()


# Hand-written NumPy subjects (CS231n, deeplearning.ai, min-char-rnn): their backward is
# the student's own, so a name must fit what that backward does, unit by unit.
NUMPY = [  # file, convention, {unit (its forward function): the one name, or None: no name}
    # dc_prev = dc_next * ft: one cell's numbers are that line's; the sequence's, whose dc_next
    # starts at zero, those of a cell carry dropped (the title says both ways)
    ("dlai_lstm_dc_prev_from_dc_next.py", "deeplearning.ai",
     {"lstm_cell_forward": "lstm-dc-prev-from-dnext-c", "lstm_forward": "lstm-dropped-cell-carry"}),
    ("cs231n_lstm_dprev_c_from_dnext_c.py", "cs231n",
     {"lstm_step_forward": "lstm-dc-prev-from-dnext-c", "lstm_forward": "lstm-dropped-cell-carry"}),
    # BPTT's loop handing a step the wrong cache, or its output's gradient to the last alone
    ("cs231n_rnn_cache_previous_step.py", "cs231n",
     {"rnn_step_forward": None, "rnn_forward": "bptt-reads-previous-steps-cache"}),
    ("dlai_rnn_caches_reversed.py", "deeplearning.ai",
     {"rnn_cell_forward": None, "rnn_forward": "bptt-reads-caches-reversed"}),
    ("dlai_rnn_da_last_step_only.py", "deeplearning.ai",
     {"rnn_cell_forward": None, "rnn_forward": "upstream-gradient-at-last-step-only"}),
    ("cs231n_lstm_tanh_derivative_squared.py", "cs231n",
     {"lstm_step_forward": "lstm-cell-tanh-derivative-one-minus-y-squared",
      "lstm_forward": "lstm-cell-tanh-derivative-one-minus-y-squared"}),
    # the stacked [a_prev; xt]: its gradient split in the other order, or stacked so throughout
    ("dlai_lstm_dconcat_x_first.py", "deeplearning.ai",
     {"lstm_cell_forward": "lstm-dconcat-split-x-first", "lstm_forward": "lstm-dconcat-split-x-first"}),
    ("dlai_lstm_concat_x_first.py", "deeplearning.ai",
     {"lstm_cell_forward": "lstm-stacked-weights-read-x-first",
      "lstm_forward": "lstm-stacked-weights-read-x-first"}),
    ("dlai_lstm_concat_x_first_split_unchanged.py", "deeplearning.ai",
     {"lstm_cell_forward": "lstm-stacked-weights-read-x-first-split-unchanged",
      "lstm_forward": "lstm-stacked-weights-read-x-first-split-unchanged"}),
    ("cs231n_rnn_dh0_adds_first_dh.py", "cs231n",
     {"rnn_step_forward": None, "rnn_forward": "dH0-plus-first-output-gradient"}),
    ("min_char_minus_one_at_input.py", "min-char-rnn", {"lossFun": "softmax-grad-minus-one-at-input"}),
    ("min_char_no_dby.py", "min-char-rnn", {"lossFun": "output-bias-grad-never-accumulated"}),
    ("cs231n_rnn_carry_starts_at_last_dh.py", "cs231n",
     {"rnn_step_forward": None, "rnn_forward": "bptt-last-step-gradient-counted-twice"}),
    ("dlai_rnn_dWax_mean.py", "deeplearning.ai",
     {"rnn_cell_forward": "dW_x-mean-over-batch", "rnn_forward": "dW_x-mean-over-batch"}),
    ("cs231n_lstm_gate_grads_from_dnext_c.py", "cs231n",
     {"lstm_step_forward": "lstm-gate-grads-from-dnext-c", "lstm_forward": "lstm-gate-grads-from-dnext-c"}),
    ("cs231n_lstm_df_from_dnext_c.py", "cs231n",
     {"lstm_step_forward": "lstm-forget-gate-grad-from-dnext-c",
      "lstm_forward": "lstm-forget-gate-grad-from-dnext-c"}),
    ("cs231n_lstm_stores_c_as_h.py", "cs231n",
     {"lstm_step_forward": None, "lstm_forward": "lstm-outputs-C-in-forward"}),
    ("cs231n_rnn_dprev_h_without_tanh.py", "cs231n",
     {"rnn_step_forward": "rnn-dprev-h-without-tanh-derivative",
      "rnn_forward": "rnn-dprev-h-without-tanh-derivative"}),
    ("dlai_lstm_dW_concat_x_first.py", "deeplearning.ai",
     {"lstm_cell_forward": "lstm-dW-concat-x-first", "lstm_forward": "lstm-dW-concat-x-first"}),
    ("dlai_rnn_bias_after_tanh.py", "deeplearning.ai",
     {"rnn_cell_forward": "rnn-bias-after-tanh-in-forward",
      "rnn_forward": "rnn-bias-after-tanh-in-forward"}),
    ("min_char_input_from_targets.py", "min-char-rnn", {"lossFun": "input-one-hot-from-targets"}),
    # each cell's own prediction, yt_pred, wrong (the gradients take none through it)
    ("dlai_rnn_softmax_over_batch.py", "deeplearning.ai",
     {"rnn_cell_forward": "prediction-softmax-over-batch", "rnn_forward": "prediction-softmax-over-batch"}),
    ("dlai_lstm_predicts_from_c.py", "deeplearning.ai",
     {"lstm_cell_forward": "lstm-prediction-from-cell-state",
      "lstm_forward": "lstm-prediction-from-cell-state"}),
    # the right numbers, transposed: dWax = xt @ dz.T
    ("dlai_rnn_dWax_transposed.py", "deeplearning.ai",
     {"rnn_cell_forward": "gradient-transposed", "rnn_forward": "gradient-transposed"}),
    ("min_char_loop_skips_first.py", "min-char-rnn",
     {"lossFun": "bptt-skips-first-step-and-its-output"}),
    ("min_char_no_output_bias.py", "min-char-rnn", {"lossFun": "output-bias-missing-in-forward"}),
    ("cs231n_rnn_transposed_forward.py", "cs231n",
     {"rnn_step_forward": "recurrent-weight-transposed-in-forward",
      "rnn_forward": "recurrent-weight-transposed-in-forward"}),
    ("cs231n_rnn_h0_every_step.py", "cs231n",  # one step reads h0 rightly: only the loop is wrong
     {"rnn_step_forward": None, "rnn_forward": "initial-state-every-step-in-forward"}),
    ("min_char_hprev_every_step.py", "min-char-rnn",
     {"lossFun": "initial-state-every-step-forward-only"}),
    ("min_char_returns_hprev.py", "min-char-rnn", {"lossFun": "first-state-returned"}),
    ("cs231n_rnn_dh0_upstream.py", "cs231n",
     {"rnn_step_forward": None, "rnn_forward": "dH0-upstream-only"}),
    ("cs231n_rnn_grads_mean.py", "cs231n",
     {"rnn_step_forward": None, "rnn_forward": "grads-mean-over-batch"}),
    ("min_char_dWhh_not_accumulated.py", "min-char-rnn",
     {"lossFun": "weight-grad-not-accumulated-dW_h"}),
    # one gate's local derivative, and the two products of the cell-state gradient
    ("cs231n_lstm_do_no_sigmoid_grad.py", "cs231n",
     {"lstm_step_forward": "lstm-o-sigmoid-derivative-missing",
      "lstm_forward": "lstm-o-sigmoid-derivative-missing"}),
    ("cs231n_lstm_dprev_c_without_f.py", "cs231n",
     {"lstm_step_forward": "lstm-dc-prev-without-f", "lstm_forward": "lstm-dc-prev-without-f"}),
    ("cs231n_lstm_dc_without_o.py", "cs231n",
     {"lstm_step_forward": "lstm-dc-without-o", "lstm_forward": "lstm-dc-without-o"}),
    ("dlai_lstm_da_prev_without_o.py", "deeplearning.ai",
     {"lstm_cell_forward": "lstm-o-term-missing-in-dx-dh",
      "lstm_forward": "lstm-o-term-missing-in-dx-dh"}),
    ("cs231n_rnn_dtanh_prev_h.py", "cs231n",
     {"rnn_step_forward": "rnn-tanh-derivative-from-H_prev",
      "rnn_forward": "rnn-tanh-derivative-from-H_prev"}),
    # a local derivative written with another value: another gate's, tanh(C_t), prev_h
    ("cs231n_lstm_df_sigmoid_mixed.py", "cs231n",
     {"lstm_step_forward": "lstm-f-sigmoid-derivative-f-one-minus-i",
      "lstm_forward": "lstm-f-sigmoid-derivative-f-one-minus-i"}),
    ("cs231n_lstm_dg_from_tanh_c.py", "cs231n",
     {"lstm_step_forward": "lstm-candidate-derivative-from-tanh-c",
      "lstm_forward": "lstm-candidate-derivative-from-tanh-c"}),
    ("cs231n_rnn_weight_grads_without_tanh.py", "cs231n",
     {"rnn_step_forward": "rnn-weight-grads-before-tanh-derivative",
      "rnn_forward": "rnn-weight-grads-before-tanh-derivative"}),
    ("dlai_softmax_shift_per_column_sum_all.py", "deeplearning.ai",
     dict.fromkeys(["rnn_cell_forward", "rnn_forward", "lstm_cell_forward", "lstm_forward"],
                   "prediction-softmax-shifted-per-column-summed-over-everything")),
    ("dlai_lstm_a_next_from_c_prev.py", "deeplearning.ai",
     {"rnn_cell_forward": None, "rnn_forward": None,
      "lstm_cell_forward": "lstm-h-from-previous-cell-in-forward",
      "lstm_forward": "lstm-h-from-previous-cell-in-forward"}),
    ("dlai_lstm_da_prev_overwritten.py", "deeplearning.ai",
     {"rnn_cell_forward": None, "rnn_forward": None,
      "lstm_cell_forward": "lstm-dprev-h-from-o-alone", "lstm_forward": "lstm-dprev-h-from-o-alone"}),
    ("min_char_backward_skips_last_step.py", "min-char-rnn", {"lossFun": "bptt-skips-last-step"}),
    ("min_char_loss_reads_input.py", "min-char-rnn", {"lossFun": "loss-at-input"}),
    ("dlai_rnn_dWaa_never_accumulated.py", "deeplearning.ai",
     {"rnn_cell_forward": None, "rnn_forward": "dW_h-grad-never-accumulated",
      "lstm_cell_forward": None, "lstm_forward": None}),
    ("dlai_lstm_dconcat_overwritten.py", "deeplearning.ai",
     {"rnn_cell_forward": None, "rnn_forward": None,
      "lstm_cell_forward": "lstm-dconcat-from-o-alone", "lstm_forward": "lstm-dconcat-from-o-alone"}),
    ("dlai_lstm_dit_without_dc_next.py", "deeplearning.ai",
     {"lstm_cell_forward": "lstm-input-gate-grad-without-dnext-c",
      "lstm_forward": "lstm-input-gate-grad-without-dnext-c"}),
    ("dlai_lstm_forget_bias_after_sigmoid.py", "deeplearning.ai",
     {"lstm_cell_forward": "lstm-f-bias-after-activation-in-forward",
      "lstm_forward": "lstm-f-bias-after-activation-in-forward"}),
    ("min_char_carry_after_tanh_derivative.py", "min-char-rnn",
     {"lossFun": "rnn-carry-added-after-tanh-derivative"}),
    ("dlai_lstm_concat_x_first_in_forward.py", "deeplearning.ai",
     {"lstm_cell_forward": "lstm-stacked-weights-read-x-first-in-forward",
      "lstm_forward": "lstm-stacked-weights-read-x-first-in-forward"}),
    ("cs231n_lstm_df_from_prev_h.py", "cs231n",
     {"lstm_step_forward": "lstm-dF-from-previous-hidden",
      "lstm_forward": "lstm-dF-from-previous-hidden"}),
]


@pytest.mark.parametrize("name,convention,units", NUMPY, ids=[n[0] for n in NUMPY])
def test_a_handwritten_backwards_mistake_is_named_unit_by_unit(name, convention, units):
    r = verify(_subject(name, name == NUMPY[0][0]), convention, **FAST)
    assert not r.ok, r.render()
    got = {u.name.split(" ")[0]: {n for m in u.diagnosis if m.full for n in m.mistakes}
           for u in r.units}
    assert got == {u: ({n} if n else set()) for u, n in units.items()}, r.render()


def test_a_cell_gradient_passed_back_without_the_h_path_is_described_as_such():
    """dc_prev = dc_next * ft carries nothing between steps: lstm_forward's numbers are a
    dropped cell carry, and the words name that way of dropping it too (the student's
    dc = dc_next + ... is right: a title that named only that line would mislead)."""
    r = verify(str(HERE / "dlai_lstm_dc_prev_from_dc_next.py"), "deeplearning.ai", **FAST)
    assert "dC_prev passed back is dC_next ⊙ F alone" in r.render(), r.render()


def test_the_assignments_lstm_reads_its_output_weight_as_Wy():
    """The assignment's lstm functions read parameters["Wy"] where its rnn ones read "Wya":
    a correct lstm written so passes."""
    r = verify(str(HERE / "dlai_lstm_wy.py"), "deeplearning.ai", **FAST)
    assert r.ok, r.render()


def test_a_cs231n_lstm_with_a_dict_cache_and_slices_passes():
    """The base the hand-written LSTM subjects above were each changed from, in one line."""
    r = verify(str(HERE / "cs231n_lstm_correct_dict_cache.py"), "cs231n", **FAST)
    assert r.ok, r.render()


def test_a_min_char_rnn_script_with_its_own_size_names_passes():
    """lossFun reads V and H, which the script sets from input.txt (absent when checked) and
    by hand: rnnlab sets them to the example's sizes, read off the lines making the weights."""
    r = verify(str(HERE / "min_char_own_size_names.py"), "min-char-rnn", **FAST)
    assert r.ok, r.render()


def test_a_gate_used_in_anothers_place_is_named_as_the_code_may_read():
    """R computed right and Z used where R belongs gives the numbers of R computed from Z's
    weights: the one name must say both, or it sends the student to a line that is right."""
    r = verify(str(HERE / "gru_candidate_uses_update.py"), "d2l", **FAST)
    assert "R computed right but Z used where R belongs" in r.render(), r.render()


def test_gates_used_in_each_others_places_are_named_as_the_code_may_read():
    """I and F computed right and exchanged in C_t's update give the numbers of each
    computed from the other's weights: the name must say both ways."""
    r = verify(str(HERE / "lstm_cell_update_i_f_swapped.py"), "d2l", **FAST)
    assert "used in each other's places" in r.render(), r.render()


def test_a_candidate_bias_outside_the_reset_product_is_named_in_the_form_read():
    """Per-gate layers whose source does not say the GRU form: the form is the probe's, and
    the mistake named must say that a bias sits outside R ⊙ (...), in either form's words."""
    r = verify(str(HERE / "gru_linear_bhn_outside.py"), "torch.nn", **FAST)
    assert not r.ok
    named = _named(r)
    assert len(named) == 1 and named <= {"gru-reset-after-matmul", "gru-b_hn-outside-reset"}, \
        r.render()
    assert "outside R ⊙ (...)" in r.render() or "outside the reset product" in r.render(), r.render()


def test_a_gru_whose_form_is_guessed_names_the_twin_of_the_other_form():
    """Per-gate layers used by hand through einsum: the source does not say the form and
    neither form gives the outputs. Read in the closer, the mistake named is that form's;
    the other form's mistake of the same numbers is listed beside it, and the note says
    the form was the closer, not the one written."""
    r = verify(str(HERE / "gru_linear_einsum_bhn_outside.py"), "torch.nn", **FAST)
    assert not r.ok
    full = [m for u in r.units for m in u.diagnosis if m.full]
    assert len(full) == 1, r.render()
    assert {*full[0].mistakes, *full[0].equivalent} == {"gru-reset-after-matmul",
                                                        "gru-b_hn-outside-reset"}, r.render()
    assert "neither gives its outputs: this one is the closer" in r.render()


def test_one_zero_gradient_is_not_told_as_every_gradient_zero(monkeypatch):
    """dby never accumulated: the note (what it says with the name left out) speaks of dby
    alone, never of every gradient, and of a backward's line, not of a graph."""
    from rnnlab.testing import diagnosis
    every = diagnosis.applicable  # the catalogue without the name: the note where none fits
    monkeypatch.setattr(diagnosis, "applicable", lambda *a: [
        m for m in every(*a) if m.name != "output-bias-grad-never-accumulated"])
    r = verify(_subject("min_char_no_dby.py", False), "min-char-rnn", **FAST)
    text = r.render()
    assert "these gradients are zero where the spec's are not: dby (never computed or never " \
           "accumulated in your backward)" in text, text
    assert "every gradient your code returns is zero" not in text, text


def test_outputs_left_out_of_the_loss_for_their_shape_are_not_told_as_zero_gradients():
    """A loop over the batch axis returns outputs of another shape: the loss the gradients
    are checked on leaves them out, so its gradients are not those the student's graph
    gives them; the note says so, never that every gradient is zero (a detach, no_grad)."""
    r = verify(_subject("linear_gru_loops_over_batch_axis.py", False), "torch.nn", **FAST)
    text = r.render()
    assert "h_n, output have another shape than the spec's, so the loss the gradients are " \
           "checked on leaves them out" in text, text
    assert "every gradient your code returns is zero" not in text, text
