//! Outbound connectors (gateways, Kafka, SMTP over the network) and what guards them.
//! Connectors never touch the stores directly: callers record results in their own commands.

pub mod breaker;
