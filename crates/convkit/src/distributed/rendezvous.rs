//! Where a process stands in a distributed run, as `torchrun` describes it in the
//! environment.

use crate::error::{Error, Result};

/// This process's place in a distributed run: the store's address, its rank and the number
/// of processes, read from the variables that `torchrun` sets (and that a launcher of one's
/// own sets the same way).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendezvous {
    /// `MASTER_ADDR`: the host of the key-value store every process meets at.
    pub master_addr: String,
    /// `MASTER_PORT`: the store's port.
    pub master_port: u16,
    /// `RANK`: this process's number, from 0 to `world_size - 1`.
    pub rank: usize,
    /// `LOCAL_RANK`: this process's number on its machine (which GPU it takes); `RANK` when
    /// unset.
    pub local_rank: usize,
    /// `WORLD_SIZE`: how many processes take part.
    pub world_size: usize,
    /// `TORCHELASTIC_USE_AGENT_STORE=True`: the torchrun agent hosts the store and every
    /// rank connects to it; otherwise rank 0 hosts it.
    pub agent_store: bool,
    /// `TORCHELASTIC_RESTART_COUNT`: how many times torchrun restarted the workers (0 when
    /// unset); it keeps each attempt's keys apart in the store.
    pub restart_count: u32,
}

impl Rendezvous {
    /// Reads the process's environment; `None` when `WORLD_SIZE` is unset (a run of one
    /// process). An error names the variable that is missing or malformed.
    pub fn from_env() -> Result<Option<Rendezvous>> {
        Rendezvous::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Rendezvous::from_env`], with the variables read through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Rendezvous>> {
        let Some(world_size) = lookup("WORLD_SIZE") else {
            return Ok(None);
        };
        let world_size: usize = parse("WORLD_SIZE", &world_size)?;
        if world_size == 0 {
            return Err(invalid("WORLD_SIZE", "0", "at least 1 process"));
        }
        let required = |name: &str| {
            lookup(name).ok_or_else(|| {
                Error::Distributed(format!(
                    "WORLD_SIZE={world_size} is set but {name} is not (launch with torchrun, \
                     or set RANK, MASTER_ADDR and MASTER_PORT for every process)"
                ))
            })
        };
        let rank: usize = parse("RANK", &required("RANK")?)?;
        if rank >= world_size {
            return Err(invalid(
                "RANK",
                &rank.to_string(),
                &format!("a rank below WORLD_SIZE={world_size}"),
            ));
        }
        let local_rank = match lookup("LOCAL_RANK") {
            Some(value) => parse("LOCAL_RANK", &value)?,
            None => rank,
        };
        let master_addr = required("MASTER_ADDR")?;
        if master_addr.trim().is_empty() {
            return Err(invalid("MASTER_ADDR", "", "a host name or address"));
        }
        let master_port: u16 = parse("MASTER_PORT", &required("MASTER_PORT")?)?;
        if master_port == 0 {
            return Err(invalid("MASTER_PORT", "0", "a port from 1 to 65535"));
        }
        let agent_store = lookup("TORCHELASTIC_USE_AGENT_STORE").is_some_and(|v| v == "True");
        let restart_count = match lookup("TORCHELASTIC_RESTART_COUNT") {
            Some(value) => parse("TORCHELASTIC_RESTART_COUNT", &value)?,
            None => 0,
        };
        Ok(Some(Rendezvous {
            master_addr,
            master_port,
            rank,
            local_rank,
            world_size,
            agent_store,
            restart_count,
        }))
    }

    /// The prefix of this attempt's keys in the store: `convkit/<restart count>/`.
    pub fn store_prefix(&self) -> String {
        format!("convkit/{}/", self.restart_count)
    }
}

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(name, value, "a non-negative whole number"))
}

fn invalid(name: &str, value: &str, expected: &str) -> Error {
    Error::Distributed(format!(
        "{name}={value:?} is not valid: expected {expected}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Option<Rendezvous>> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Rendezvous::from_lookup(|name| env.get(name).cloned())
    }

    fn message(result: Result<Option<Rendezvous>>) -> String {
        result.expect_err("an error").to_string()
    }

    const HAND: &[(&str, &str)] = &[
        ("WORLD_SIZE", "2"),
        ("RANK", "1"),
        ("MASTER_ADDR", "127.0.0.1"),
        ("MASTER_PORT", "29500"),
    ];

    #[test]
    fn no_world_size_is_a_single_process() {
        assert_eq!(read(&[("RANK", "0")]).unwrap(), None);
    }

    #[test]
    fn launched_by_hand() {
        let r = read(HAND).unwrap().unwrap();
        assert_eq!(
            r,
            Rendezvous {
                master_addr: "127.0.0.1".into(),
                master_port: 29500,
                rank: 1,
                local_rank: 1,
                world_size: 2,
                agent_store: false,
                restart_count: 0,
            }
        );
        assert_eq!(r.store_prefix(), "convkit/0/");
    }

    #[test]
    fn launched_by_torchrun() {
        let mut vars = HAND.to_vec();
        vars.extend([
            ("LOCAL_RANK", "0"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "3"),
        ]);
        let r = read(&vars).unwrap().unwrap();
        assert_eq!((r.local_rank, r.agent_store, r.restart_count), (0, true, 3));
        assert_eq!(r.store_prefix(), "convkit/3/");
        let mut elsewhere = HAND.to_vec();
        elsewhere.push(("TORCHELASTIC_USE_AGENT_STORE", "False"));
        assert!(!read(&elsewhere).unwrap().unwrap().agent_store);
    }

    #[test]
    fn errors_name_the_variable() {
        let without = |name: &str| -> Vec<(&str, &str)> {
            HAND.iter().copied().filter(|(k, _)| *k != name).collect()
        };
        for name in ["RANK", "MASTER_ADDR", "MASTER_PORT"] {
            let text = message(read(&without(name)));
            assert!(text.contains(name) && text.contains("is not"), "{text}");
        }
        let with = |name: &'static str, value: &'static str| {
            let mut vars: Vec<_> = HAND.iter().copied().filter(|(k, _)| *k != name).collect();
            vars.push((name, value));
            vars
        };
        let cases = [
            ("RANK", "2", "below WORLD_SIZE=2"),
            ("RANK", "-1", "RANK=\"-1\""),
            ("WORLD_SIZE", "two", "WORLD_SIZE=\"two\""),
            ("WORLD_SIZE", "0", "WORLD_SIZE=\"0\""),
            ("MASTER_PORT", "70000", "MASTER_PORT=\"70000\""),
            ("MASTER_PORT", "0", "MASTER_PORT=\"0\""),
            ("MASTER_ADDR", " ", "MASTER_ADDR"),
            ("LOCAL_RANK", "x", "LOCAL_RANK=\"x\""),
        ];
        for (name, value, expected) in cases {
            let text = message(read(&with(name, value)));
            assert!(text.contains(expected), "{name}={value}: {text}");
        }
    }
}
