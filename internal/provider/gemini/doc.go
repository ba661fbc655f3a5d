// Package gemini is the upstream adapter for Google's generateContent API,
// as served by the Gemini API (generativelanguage.googleapis.com, API key)
// and by Vertex AI's Google publisher models (aiplatform.googleapis.com,
// OAuth2 bearer tokens). It translates the canonical llm.Request into a
// GenerateContentRequest and decodes answers, streams (alt=sse) and Google
// error bodies back into the canonical model. It imports only llm, apierr,
// the standard library and golang.org/x/oauth2.
//
// # Request mapping
//
//   - System parts become systemInstruction; user turns role "user",
//     assistant turns role "model"; tool results are functionResponse parts
//     in a "user" turn, as the function-calling guide shows. Consecutive
//     turns of one role are merged, so parallel tool results travel in one
//     turn.
//   - A tool result needs the function's name. llm.ToolResult.Name is used
//     when set; otherwise it is resolved from the assistant tool call with
//     the same ID earlier in the history, and a result that matches none is
//     refused with a 400. The result text is sent as
//     response {"output": text} ({"error": text} when IsError), the keys
//     Google documents for FunctionResponse.response.
//   - Call ids are not sent: Gemini pairs results with calls by name and
//     order, and ids synthesised by this package mean nothing upstream.
//   - Thinking parts in the history are dropped: Gemini keeps reasoning state
//     in thoughtSignature, not in thought text
//     (https://ai.google.dev/gemini-api/docs/thought-signatures). A tool call
//     decoded from Gemini keeps its signature in llm.Part.Signature and sends
//     it back as thoughtSignature; a tool call without one (history written
//     by a client that drops it, or by another provider) carries the
//     documented placeholder "skip_thought_signature_validator", without
//     which Gemini 3 models answer 400 "Function call is missing a
//     thought_signature".
//   - Inline images are inlineData. URL images become fileData {mimeType,
//     fileUri}: Vertex has always fetched gs:// and http(s) URIs, and the
//     Gemini API fetches public and signed http(s) URLs since 2026-01-08
//     (changelog; "File input methods" guide). fileData needs a MIME type;
//     when the image has none and the URL's extension names no image type
//     the request is refused with a 400.
//   - Tool parameters go as parametersJsonSchema and a JSON-schema response
//     format as responseJsonSchema (with responseMimeType
//     application/json): both APIs take JSON Schema there (Vertex since
//     googleapis commit 50febc7, "add json schema support to structured
//     output and function declaration"), so no conversion to the OpenAPI
//     subset is needed. Only a top-level "$schema" is removed, a keyword
//     outside the documented subset that schema generators add.
//   - Tool choice: auto → AUTO (the default, not sent), none → NONE,
//     required → ANY, a named tool → ANY with allowedFunctionNames.
//     DisableParallel has no Gemini equivalent and is ignored.
//   - ThinkingBudget → thinkingConfig {thinkingBudget, includeThoughts:
//     true}, so the client sees thought summaries as it asked for thinking.
//     ReasoningEffort (when no budget is set) maps as Google's OpenAI
//     compatibility layer does: none → 0, minimal and low → 1024, medium →
//     8192, high → 24576, thoughts not included.
//   - N > 1 is refused: a canonical llm.Response carries one answer, so
//     candidateCount > 1 would bill for candidates no client could see.
//   - Request.User and Message.Name have no Gemini field and are dropped.
//
// # Response mapping
//
// Only candidates[0] is read. Text parts are PartText, parts with
// "thought": true PartThinking, functionCall parts PartToolCall with the
// compact JSON of args and the call's id, or "call_<n>" (n counting the
// answer's calls from 0) when Gemini sends none. finishReason STOP is
// StopEndTurn (StopToolUse when the answer calls a function: Gemini says
// STOP there too), MAX_TOKENS StopMaxTokens, SAFETY, RECITATION, BLOCKLIST,
// PROHIBITED_CONTENT, SPII and IMAGE_SAFETY StopContentFilter. A prompt
// blocked before generation (promptFeedback.blockReason, no candidates) is a
// normal answer with no content and StopContentFilter, as OpenAI reports
// filtered completions, so the prompt tokens Google counts are still
// recorded.
//
// Usage: promptTokenCount already includes cachedContentTokenCount ("When
// cached_content is set, this is still the total effective prompt size
// meaning this includes the number of tokens in the cached content" —
// GenerateContentResponse.UsageMetadata), which matches llm.Usage; the tool
// use prompt count (results of Google-run tools fed back to the model) is
// input too. candidatesTokenCount excludes thoughts (totalTokenCount is the
// sum of prompt, candidates, tool-use prompt and thoughts counts), so
// thoughtsTokenCount is added to OutputTokens and is ReasoningTokens.
//
// # Streams
//
// streamGenerateContent?alt=sse sends "data: {json}" events separated by
// blank lines, lines ending in CRLF. Every chunk repeats usageMetadata as
// totals so far; the decoder keeps the last and emits one EventUsage before
// EventStop, both at the end of the stream. A stream that ends without a
// finishReason (or a prompt block) was cut and is an error; an
// {"error": {...}} chunk is an EventError whose Err is the *apierr.Error
// DecodeError would give for that status.
package gemini
