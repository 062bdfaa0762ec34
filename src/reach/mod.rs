//! Reaching nodes: SSH with verified host keys, and asking a node's QEMU
//! what KVM can give a guest — every wait bounded.
//!
//! Rule: may use the CPU core and the Proxmox inputs; the only layer that
//! opens network connections or starts QEMU.

pub mod known_hosts;
pub mod kvm_probe;
pub mod local;
pub mod process;
pub mod pvesh;
pub mod qmp;
pub mod scan;
pub mod ssh;
