// Package fakeanthropic is a scripted fake of Anthropic's Messages API and of
// Claude on Vertex AI (rawPredict / streamRawPredict), speaking their wire
// formats byte for byte: messages (plain and streamed as server-sent events),
// tool use, token counting, the models list and Anthropic's error bodies.
//
// It mirrors package fakeupstream: tests script answers with
// [Server.Enqueue] and [Server.SetDefault] (delays, error statuses with
// retry-after, hung requests, streams cut or failed mid-way, tool calls, stop
// sequences) and inspect what arrived with [Server.Requests]; [Listen] serves
// one on a real port. Non-test code may import it, so it does not import
// package testing.
//
// # Paths
//
//	POST /v1/messages                      x-api-key or Authorization: Bearer, anthropic-version
//	POST /v1/messages/count_tokens
//	GET  /v1/models
//	GET  /v1/models/{model}
//	POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:rawPredict        Vertex
//	POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:streamRawPredict
//	POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/count-tokens:rawPredict
//
// The first-party paths need the anthropic-version header (400 without it,
// as api.anthropic.com answers). Vertex paths need "Authorization: Bearer
// [Options.VertexToken]" instead of a key, take anthropic_version
// ("vertex-2023-10-16") in the body instead of the header, and reject a
// "model" field in a rawPredict body because the model is in the URL
// (count-tokens, whose URL names no model, needs "model" in the body). A
// Vertex authentication failure is answered in Google's error shape, because
// Google's frontend rejects it before the request reaches Anthropic; every
// other Vertex answer is the Messages API's, with ids prefixed msg_vrtx_ and
// req_vrtx_ as Vertex's are.
//
// # Wire format
//
// Bodies are compact JSON with keys in Anthropic's order: id, type, role,
// model, content, stop_reason, stop_sequence, stop_details, usage, container,
// diagnostics. The usage object carries the classic counters
// (input_tokens, cache_creation_input_tokens, cache_read_input_tokens,
// cache_creation, output_tokens, service_tier) followed by the newer fields
// the published spec marks required (server_tool_use, inference_geo,
// output_tokens_details, speed), null where the API sends null. Streams send
// "event: <type>\ndata: <json>\n\n" events, each flushed on its own:
// message_start, content_block_start, ping, content_block_delta...,
// content_block_stop, message_delta, message_stop. Errors are
// {"type":"error","error":{"type","message"},"request_id"} with the request-id
// header set, mapped from the status as https://docs.claude.com/en/api/errors
// lists (413 request_too_large, 529 overloaded_error, other 4xx
// invalid_request_error, other 5xx api_error).
//
// # Token accounting
//
// Usage is deterministic so tests can assert it:
//
//   - input_tokens = the whitespace-separated words of the system prompt and
//     of every text block (including text inside tool_result blocks), plus
//     [MessageTokens] per message, [ImageTokens] per image and [ToolTokens]
//     per tool definition; count_tokens answers the same number;
//   - output_tokens = the number of text pieces streamed ([Options.Chunks],
//     fewer if the text has fewer runes) plus, for a tool call, the number of
//     partial_json pieces its input is streamed in (also Options.Chunks, fewer
//     for short input);
//   - cache_creation_input_tokens and cache_read_input_tokens are
//     [Options.CacheCreationTokens] and [Options.CacheReadTokens], reported in
//     addition to input_tokens.
//
// The only values that vary between runs are ids, which come from
// [Options.IDs] when set.
package fakeanthropic
