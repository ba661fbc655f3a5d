// Package fakeupstream is a scripted fake of the OpenAI and Azure OpenAI HTTP
// APIs that speaks their wire formats byte for byte: chat completions (plain
// and streamed as server-sent events), embeddings (float and base64), the
// models list and each provider's error bodies.
//
// The gateway's end-to-end tests point a provider at a [Server] and script
// its answers with [Server.Enqueue] (delays, error statuses with Retry-After,
// hung requests, streams cut mid-way). `multipolar demo` serves one with
// [Listen]. Because non-test code imports it, the package does not import
// package testing.
//
// # Paths
//
// Paths of both providers are recognised whatever the flavor:
//
//	POST /v1/chat/completions                                   OpenAI
//	POST /v1/embeddings
//	GET  /v1/models
//	POST /openai/deployments/{deployment}/chat/completions?api-version=...   Azure classic
//	POST /openai/deployments/{deployment}/embeddings?api-version=...
//	GET  /openai/models?api-version=...
//	POST /openai/v1/chat/completions                            Azure v1
//	POST /openai/v1/embeddings
//	GET  /openai/v1/models
//
// [Options.Flavor] decides how bodies, stream chunks and errors are shaped.
// The OpenAI flavor writes non-streamed bodies indented by two spaces (error
// bodies by four) with keys in OpenAI's order, as api.openai.com does. The
// Azure flavor writes compact JSON with keys sorted, adds
// prompt_filter_results and content_filter_results, sends the leading
// stream chunk with empty choices, and uses Azure's {"code","message"} error
// bodies for 401, 404, 429 and 503. Error bodies follow the flavor on every
// path; the one exception is a classic Azure path without api-version, which
// always gets Azure's literal 404 "Resource not found" body.
//
// # Token accounting
//
// Usage is deterministic so tests can assert it:
//
//   - chat prompt_tokens = 4 per message + the number of whitespace-separated
//     words in every message's text (string content, or the "text" of each
//     content part);
//   - chat completion_tokens = the number of content pieces the answer is
//     split into, which is [Options.Chunks] unless the text has fewer runes;
//   - embeddings prompt_tokens = words per string input, or the length of
//     each token-array input.
//
// The only values that vary between runs are id and created, and those come
// from [Options.IDs] and [Options.Now] when set.
package fakeupstream
