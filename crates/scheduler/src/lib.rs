//! The control plane of Switchyard: a pure, deterministic state machine.
