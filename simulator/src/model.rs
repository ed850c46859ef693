//! The static shape of the simulated wallet: services and their sizes, providers, cells, zones.

/// One service of a cell and how it is sized.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    pub name: &'static str,
    pub replicas: u32,
    /// Requests per second one pod serves at 100% utilisation.
    pub capacity_rps_per_pod: f64,
    /// Own processing time at low load, seconds (callees come on top).
    pub base_latency_secs: f64,
    pub memory_base_bytes: f64,
    pub memory_limit_bytes: f64,
    /// On the payment-authorisation path; `loyalty` is not, and may be circuit-broken.
    pub essential: bool,
}

const MIB: f64 = 1024.0 * 1024.0;

/// The services every cell runs, in a fixed order (indices are used throughout the simulator).
pub const SERVICES: [ServiceSpec; 7] = [
    ServiceSpec {
        name: "api-gateway",
        replicas: 3,
        capacity_rps_per_pod: 120.0,
        base_latency_secs: 0.004,
        memory_base_bytes: 180.0 * MIB,
        memory_limit_bytes: 512.0 * MIB,
        essential: true,
    },
    ServiceSpec {
        name: "wallet-api",
        replicas: 3,
        capacity_rps_per_pod: 60.0,
        base_latency_secs: 0.015,
        memory_base_bytes: 260.0 * MIB,
        memory_limit_bytes: 768.0 * MIB,
        essential: true,
    },
    ServiceSpec {
        name: "ledger",
        replicas: 3,
        capacity_rps_per_pod: 60.0,
        base_latency_secs: 0.010,
        memory_base_bytes: 300.0 * MIB,
        memory_limit_bytes: 512.0 * MIB,
        essential: true,
    },
    ServiceSpec {
        name: "payments",
        replicas: 3,
        capacity_rps_per_pod: 40.0,
        base_latency_secs: 0.020,
        memory_base_bytes: 240.0 * MIB,
        memory_limit_bytes: 512.0 * MIB,
        essential: true,
    },
    ServiceSpec {
        name: "provider-gateway",
        replicas: 3,
        capacity_rps_per_pod: 40.0,
        base_latency_secs: 0.008,
        memory_base_bytes: 200.0 * MIB,
        memory_limit_bytes: 512.0 * MIB,
        essential: true,
    },
    ServiceSpec {
        name: "loyalty",
        replicas: 2,
        capacity_rps_per_pod: 60.0,
        base_latency_secs: 0.012,
        memory_base_bytes: 220.0 * MIB,
        memory_limit_bytes: 512.0 * MIB,
        essential: false,
    },
    ServiceSpec {
        name: "consumer",
        replicas: 2,
        capacity_rps_per_pod: 80.0,
        base_latency_secs: 0.005,
        memory_base_bytes: 160.0 * MIB,
        memory_limit_bytes: 384.0 * MIB,
        essential: true,
    },
];

pub const API_GATEWAY: usize = 0;
pub const WALLET_API: usize = 1;
pub const LEDGER: usize = 2;
pub const PAYMENTS: usize = 3;
pub const PROVIDER_GATEWAY: usize = 4;
pub const LOYALTY: usize = 5;
pub const CONSUMER: usize = 6;

/// The service index of `name`.
pub fn service_index(name: &str) -> Option<usize> {
    SERVICES.iter().position(|s| s.name == name)
}

/// The per-cell database, seen through the ledger's client spans and its own p99 gauge.
pub const DATABASE: &str = "ledger-db";

/// An external payment provider and its normal behaviour.
#[derive(Debug, Clone, Copy)]
pub struct ProviderSpec {
    pub name: &'static str,
    /// Share of payments routed to it, percent.
    pub weight: f64,
    pub latency_secs: f64,
    pub error_ratio: f64,
}

pub const PROVIDERS: [ProviderSpec; 3] = [
    ProviderSpec {
        name: "provider-a",
        weight: 60.0,
        latency_secs: 0.120,
        error_ratio: 0.002,
    },
    ProviderSpec {
        name: "provider-b",
        weight: 30.0,
        latency_secs: 0.150,
        error_ratio: 0.003,
    },
    ProviderSpec {
        name: "provider-c",
        weight: 10.0,
        latency_secs: 0.200,
        error_ratio: 0.004,
    },
];

/// Zones cells are spread over: cell i lives in zone `ZONES[i % 3]`.
pub const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];

/// Nodes per cell.
pub const NODES_PER_CELL: usize = 3;

/// Share of requests that are payments (the rest are balance reads).
pub const PAYMENT_SHARE: f64 = 0.6;

/// Histogram bucket bounds of `http_server_request_duration_seconds`, seconds.
pub const BUCKETS: [f64; 4] = [0.05, 0.25, 1.0, 2.5];
