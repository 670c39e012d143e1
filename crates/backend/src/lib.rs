//! The real executor: devices behind one trait, real models, replay.
