//! hone's prompts: the text the model sees (system prompt, edit-format instructions, plan requests,
//! test feedback), rendered from templates and fitted to a token budget.
