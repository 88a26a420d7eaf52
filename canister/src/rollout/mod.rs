//! The rollout engine: a plain state machine, driven by outcomes, that decides which management
//! step each child takes next. It performs no IC calls.
