// Package bedrock is the upstream adapter for the Amazon Bedrock Runtime
// Converse and ConverseStream APIs. It translates the canonical llm.Request
// into a Converse body, signs it with SigV4 (service "bedrock"), and decodes
// Converse JSON answers, the binary AWS event stream of ConverseStream and
// Bedrock's restJson1 errors back into canonical form.
//
// Unlike other provider packages, which import only llm, apierr and the
// standard library, this one also imports the AWS SDK's SigV4 signer,
// event-stream codec and credential chain: re-implementing SigV4 and the
// AWS credential sources (environment, shared files, SSO, IMDS, web
// identity) is exactly the kind of security-sensitive code the gateway should
// not own.
//
// # Mapping decisions
//
// Requests (see chat.go):
//   - RoleTool messages become user messages of toolResult blocks, and
//     consecutive messages of one role are merged, because Converse requires
//     user and assistant turns to alternate.
//   - Images must be inline: Converse has no URL image source, so an image
//     URL is refused as feature "image_url". Media types map to Converse's
//     formats png, jpeg, gif and webp; others are refused.
//   - Tool results are always sent as {"text"} content: canonical results
//     carry text (and images), never structured JSON.
//   - ToolChoiceAuto omits toolChoice (auto is Bedrock's default, and some
//     model families reject an explicit toolChoice); Required is {"any":{}},
//     Named is {"tool":{"name"}}. Bedrock has no "none": with ToolChoiceNone
//     the tools are left out, which is only possible while the history holds
//     no toolUse/toolResult blocks (Bedrock then requires toolConfig), so
//     such a request is refused as feature "tool_choice=none".
//     DisableParallel cannot be expressed and is refused as
//     "parallel_tool_calls".
//   - TopK and ThinkingBudget go in additionalModelRequestFields in the
//     Anthropic form ({"top_k"}, {"thinking":{"type":"enabled",
//     "budget_tokens"}}); other model families reject these fields with a
//     ValidationException that reaches the client as a BadRequest.
//   - Prior thinking is sent back as reasoningContent only when it carries a
//     signature; unsigned thinking (from another provider) is dropped, as
//     Anthropic documents prior-turn thinking as optional.
//   - ResponseFormat JSON, N>1, Seed, presence/frequency penalties,
//     ReasoningEffort and r.Unsupported are refused with a BadRequest
//     `feature "X" is not supported by provider "NAME"`. User and
//     Message.Name have no Converse field and are ignored.
//
// Usage: Bedrock's inputTokens counts only the input that was neither read
// from nor written to the prompt cache; cacheReadInputTokens and
// cacheWriteInputTokens are reported beside it (AWS prompt caching guide:
// "total input tokens = inputTokens + cacheReadInputTokens +
// cacheWriteInputTokens"). llm.Usage.InputTokens includes both, so it is
// their sum.
package bedrock
