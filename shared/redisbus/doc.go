// Package redisbus is the distributed implementation of the seam between the
// HTTP API and the connector (shared.Connector), over Redis.
//
//   - Client (the API side) implements shared.Connector. Every op of
//     shared's op table is XADDed, by name with its request as JSON, to the
//     stream of the token's shard and answered on a per-request reply list;
//     Status, Statuses and QR read the keys the connector publishes and
//     never wait on it.
//   - Server (the connector side) owns shards through Redis leases, reads
//     their streams in the consumer group "wago" and runs each command at
//     most once on the local shared.Connector.
//   - StatePublisher (the connector side) writes the status and QR keys,
//     with TTLs, without ever blocking its caller, stamped with the shard's
//     lease so that readers trust a running state only while its connector
//     lives (status.go).
//   - SentLog (sentlog.go) remembers the message IDs clients chose and each
//     token sent, for every connector, so a retried send is not sent twice.
//   - The webhook outbox (outbox.go): one stream of events per shard, read
//     in the consumer group "delivery" by the connector owning the shard,
//     with retries and dead letters in sorted sets.
//
// wire.go describes the message format and the key layout, lease.go the
// ownership policy, handler.go the delivery guarantees.
package redisbus
