// Package actors is the Infinity engine: the slice that turns a thread's
// waiting input messages into durable history, the built-in tools, and the
// host that runs each thread as a protoactor-go actor which passivates when
// idle and is re-activated from the stores when a message arrives.
//
// It may import the root package, the standard library and protoactor-go;
// concrete stores, senders and model providers are handed in through Config.
package actors
