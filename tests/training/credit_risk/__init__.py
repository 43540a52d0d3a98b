"""Risk models on the credit sets and synthetic transactions (the real card data: test_card_data.py
beside this folder), split by what is checked: the credit loaders and encodings (``test_credit_data``),
cross-validation without leaks (``test_credit_cv``), ONNX parity of the exported models
(``test_onnx_parity``) and the cards the stream and the batch scorer use (``test_risk_cards``).

Small and fast: subsets, few epochs, few bootstrap resamples. The credit sets are loaded once for the
folder (``conftest``).
"""
