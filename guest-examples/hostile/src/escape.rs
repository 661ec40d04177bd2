//! Reaching the environment, files, stdin and sockets directly.

use crate::Hostile;
use crate::exports::airlock_examples::hostile::escape::Guest;
use crate::wasi::io::poll::Pollable;
use crate::wasi::sockets::network::{IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use crate::wasi::sockets::udp::OutgoingDatagram;
use crate::wasi::sockets::{instance_network, ip_name_lookup, tcp_create_socket, udp_create_socket};
use std::io::Read as _;

impl Guest for Hostile {
    fn env() -> Vec<String> {
        std::env::vars_os().map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy())).collect()
    }

    fn args() -> Vec<String> {
        std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    fn preopens() -> Vec<String> {
        crate::wasi::filesystem::preopens::get_directories().into_iter().map(|(_, path)| path).collect()
    }

    fn read_file(path: String) -> Result<String, String> {
        std::fs::read(&path).map(|b| String::from_utf8_lossy(&b).into_owned()).map_err(|e| e.to_string())
    }

    fn read_stdin() -> Result<String, String> {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| e.to_string())?;
        Ok(text)
    }

    fn tcp_connect(address: String) -> Result<String, String> {
        let addr = parse_v4(&address)?;
        let network = instance_network::instance_network();
        let socket = tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4).map_err(|e| format!("create: {e:?}"))?;
        socket.start_connect(&network, addr).map_err(|e| format!("connect: {e:?}"))?;
        wait(&socket.subscribe());
        socket.finish_connect().map_err(|e| format!("finish: {e:?}"))?;
        Ok("connected".into())
    }

    fn udp_send(address: String) -> Result<String, String> {
        let addr = parse_v4(&address)?;
        let network = instance_network::instance_network();
        let socket = udp_create_socket::create_udp_socket(IpAddressFamily::Ipv4).map_err(|e| format!("create: {e:?}"))?;
        let any = IpSocketAddress::Ipv4(Ipv4SocketAddress { port: 0, address: (0, 0, 0, 0) });
        socket.start_bind(&network, any).map_err(|e| format!("bind: {e:?}"))?;
        wait(&socket.subscribe());
        socket.finish_bind().map_err(|e| format!("finish bind: {e:?}"))?;
        let (_incoming, outgoing) = socket.stream(Some(addr)).map_err(|e| format!("stream: {e:?}"))?;
        outgoing.check_send().map_err(|e| format!("check send: {e:?}"))?;
        let sent = outgoing
            .send(&[OutgoingDatagram { data: b"escaped".to_vec(), remote_address: None }])
            .map_err(|e| format!("send: {e:?}"))?;
        Ok(format!("sent {sent}"))
    }

    fn resolve(name: String) -> Result<Vec<String>, String> {
        let network = instance_network::instance_network();
        let stream = ip_name_lookup::resolve_addresses(&network, &name).map_err(|e| format!("resolve: {e:?}"))?;
        let mut out = Vec::new();
        loop {
            match stream.resolve_next_address() {
                Ok(Some(IpAddress::Ipv4((a, b, c, d)))) => out.push(format!("{a}.{b}.{c}.{d}")),
                Ok(Some(IpAddress::Ipv6(v))) => out.push(format!("{v:?}")),
                Ok(None) => return Ok(out),
                Err(crate::wasi::sockets::network::ErrorCode::WouldBlock) => wait(&stream.subscribe()),
                Err(e) => return Err(format!("next: {e:?}")),
            }
        }
    }
}

fn wait(pollable: &Pollable) {
    pollable.block();
}

fn parse_v4(address: &str) -> Result<IpSocketAddress, String> {
    let addr: std::net::SocketAddrV4 = address.parse().map_err(|_| format!("{address:?} is not ipv4:port"))?;
    let [a, b, c, d] = addr.ip().octets();
    Ok(IpSocketAddress::Ipv4(Ipv4SocketAddress { port: addr.port(), address: (a, b, c, d) }))
}
