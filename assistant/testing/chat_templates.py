"""Chat templates that render the same prompts as the real Qwen2-VL-Instruct and Qwen2-Audio-Instruct ones.

The real templates ship with the checkpoints on the hub, which the build and CI machines cannot reach, so the
tiny checkpoints carry these instead. They are written independently but must produce byte-identical prompts:

- a default system turn ("You are a helpful assistant.") when the first message is not a system message;
- every turn as ``<|im_start|>ROLE\\n ... <|im_end|>\\n``;
- content either a plain string or a list of typed parts; an image part becomes
  ``<|vision_start|><|image_pad|><|vision_end|>``, a video part ``<|vision_start|><|video_pad|><|vision_end|>``
  (each optionally prefixed with ``Picture N: `` / ``Video N: `` when ``add_vision_id`` is true), an audio part
  ``Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>\\n``, a text part its text. As in the real Qwen2-Audio
  template, an audio part is recognised by an ``audio`` or ``audio_url`` key, not by ``"type": "audio"``
  alone (the stricter rule, so code that passes here also works with the real checkpoint);
- ``<|im_start|>assistant\\n`` at the end when ``add_generation_prompt`` is true.

transformers compiles templates with ``trim_blocks`` and ``lstrip_blocks``; every tag here also trims with
``-`` so the indentation below never reaches the output. Newlines in the output come only from the ``'\\n'``
escapes inside string literals.
"""

from __future__ import annotations

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."  # written into both templates below

QWEN2VL_CHAT_TEMPLATE = r"""
{%- set images_seen = namespace(n=0) -%}
{%- set videos_seen = namespace(n=0) -%}
{%- for message in messages -%}
    {%- if loop.first and message['role'] != 'system' -%}
        {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' -}}
    {%- endif -%}
    {{- '<|im_start|>' + message['role'] + '\n' -}}
    {%- if message['content'] is string -%}
        {{- message['content'] -}}
    {%- else -%}
        {%- for part in message['content'] -%}
            {%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}
                {%- set images_seen.n = images_seen.n + 1 -%}
                {%- if add_vision_id -%}{{- 'Picture ' ~ images_seen.n ~ ': ' -}}{%- endif -%}
                {{- '<|vision_start|><|image_pad|><|vision_end|>' -}}
            {%- elif part['type'] == 'video' or 'video' in part -%}
                {%- set videos_seen.n = videos_seen.n + 1 -%}
                {%- if add_vision_id -%}{{- 'Video ' ~ videos_seen.n ~ ': ' -}}{%- endif -%}
                {{- '<|vision_start|><|video_pad|><|vision_end|>' -}}
            {%- elif 'text' in part -%}
                {{- part['text'] -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{- '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
{%- endif -%}
""".strip()

QWEN2AUDIO_CHAT_TEMPLATE = r"""
{%- set audios_seen = namespace(n=0) -%}
{%- for message in messages -%}
    {%- if loop.first and message['role'] != 'system' -%}
        {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' -}}
    {%- endif -%}
    {{- '<|im_start|>' + message['role'] + '\n' -}}
    {%- if message['content'] is string -%}
        {{- message['content'] -}}
    {%- else -%}
        {%- for part in message['content'] -%}
            {%- if 'audio' in part or 'audio_url' in part -%}
                {%- set audios_seen.n = audios_seen.n + 1 -%}
                {{- 'Audio ' ~ audios_seen.n ~ ': <|audio_bos|><|AUDIO|><|audio_eos|>\n' -}}
            {%- elif 'text' in part -%}
                {{- part['text'] -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{- '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
{%- endif -%}
""".strip()
