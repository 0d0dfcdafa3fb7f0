//! hone's agent: the plan → generate → apply → test → iterate loop, and the `Model` trait through which
//! it reaches any backend (local engine, OpenAI-compatible endpoint, scripted fake in tests).
