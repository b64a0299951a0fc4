// Package infinity is the vocabulary of the Infinity runtime for long-lived
// LLM agents: thread ids, input messages, history items, thread info and
// state, and the platform interfaces the engine runs on (ConversationStore,
// StateStore, InputSender, HTTPClient, ModelProvider, Tool).
//
// This package imports only the standard library. The slice engine lives in
// actors/, implementations of the interfaces in persistence/, mailbox/,
// models/ and tools/, and only cmd/ wires concrete implementations together.
package infinity
