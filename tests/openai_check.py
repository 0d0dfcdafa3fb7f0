"""Checks `hone serve` with the official `openai` Python package: a chat completion, a streamed chat
completion, and a completion with `suffix` (fill-in-the-middle).

Usage: python tests/openai_check.py BASE_URL MODEL [API_KEY]
Run by tests/serve.rs against a server it starts; exits non-zero with a message on any mismatch.
"""

import sys

import openai


def fail(message):
    print(f"openai_check: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def main():
    if len(sys.argv) < 3:
        fail("usage: openai_check.py BASE_URL MODEL [API_KEY]")
    base_url, model = sys.argv[1], sys.argv[2]
    api_key = sys.argv[3] if len(sys.argv) > 3 else "unused"
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)

    models = client.models.list()
    check([m.id for m in models.data] == [model], f"models.list gave {[m.id for m in models.data]}")

    messages = [{"role": "user", "content": "Write a haiku about diffusion."}]
    chat = client.chat.completions.create(
        model=model, messages=messages, max_tokens=16, seed=4, temperature=0, stop=["\x00"]
    )
    check(chat.object == "chat.completion", f"object {chat.object}")
    check(chat.id.startswith("chatcmpl-"), f"id {chat.id}")
    check(len(chat.choices) == 1, "one choice")
    choice = chat.choices[0]
    check(choice.message.role == "assistant", f"role {choice.message.role}")
    check(isinstance(choice.message.content, str), "content is a string")
    check(choice.finish_reason in ("stop", "length"), f"finish_reason {choice.finish_reason}")
    check(chat.usage.prompt_tokens > 0, "usage.prompt_tokens")
    check(0 <= chat.usage.completion_tokens <= 16, f"completion_tokens {chat.usage.completion_tokens}")
    check(
        chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens,
        "total_tokens",
    )

    stream = client.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=16,
        seed=4,
        temperature=0,
        stop=["\x00"],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage, chunks = "", None, None, 0
    for chunk in stream:
        chunks += 1
        check(chunk.object == "chat.completion.chunk", f"chunk object {chunk.object}")
        if chunk.usage is not None:
            usage = chunk.usage
        for delta_choice in chunk.choices:
            if delta_choice.delta.content:
                text += delta_choice.delta.content
            if delta_choice.finish_reason:
                finish = delta_choice.finish_reason
    check(chunks >= 2, f"only {chunks} chunks")
    check(text == choice.message.content, f"streamed {text!r} != whole {choice.message.content!r}")
    check(finish == choice.finish_reason, f"streamed finish {finish} != {choice.finish_reason}")
    check(usage is not None and usage.completion_tokens == chat.usage.completion_tokens, "stream usage")

    completion = client.completions.create(
        model=model, prompt="def add(a, b):\n    return ", suffix="\n\nprint(add(1, 2))\n", max_tokens=8, seed=1
    )
    check(completion.object == "text_completion", f"object {completion.object}")
    check(completion.id.startswith("cmpl-"), f"id {completion.id}")
    check(isinstance(completion.choices[0].text, str), "completion text")
    check(completion.choices[0].finish_reason in ("stop", "length"), "completion finish_reason")
    check(completion.usage.prompt_tokens > 0, "completion usage")

    try:
        client.chat.completions.create(model="no-such-model", messages=messages, max_tokens=4)
        fail("an unknown model was accepted")
    except openai.NotFoundError as error:
        check(error.status_code == 404, f"status {error.status_code}")
    try:
        client.chat.completions.create(model=model, messages=messages, max_tokens=4, temperature=5)
        fail("temperature 5 was accepted")
    except openai.BadRequestError as error:
        check(error.body and error.body.get("param") == "temperature", f"error body {error.body}")

    print(f"openai_check: ok ({len(chat.choices[0].message.content)} chars chat, {chunks} chunks)")


if __name__ == "__main__":
    main()
