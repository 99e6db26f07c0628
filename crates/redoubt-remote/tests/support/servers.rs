//! Storage servers on loopback for the backend tests: moto (S3) and Azurite (Azure Blob),
//! started by the tests and killed by their own handles when dropped. A server that cannot be
//! started FAILS the test.
#![allow(unreachable_pub)]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use redoubt_remote::Backend;

/// Azurite's well-known development account key (public, in Microsoft's documentation).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A server process this test started; killed (by its own handle) when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn start(program: &str, args: &[String], port: u16, dir: tempfile::TempDir) -> Server {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {program} (install it: see .ci/run): {e}");
        });
    let mut server = Server {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("{program} exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{program} did not listen on {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// One raw HTTP/1.1 request on loopback; the status code.
pub fn http(port: u16, request: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).to_string();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// moto's S3 on loopback, with bucket `redoubt-test` made.
pub fn moto() -> Server {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let args = ["-H", "127.0.0.1", "-p", &port.to_string()].map(String::from);
    let server = start("moto_server", &args, port, dir);
    let put = format!(
        "PUT /redoubt-test HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(http(port, &put), 200, "moto made the bucket");
    server
}

pub fn s3_backend(server: &Server, prefix: &str) -> Backend {
    s3_at(server.port, prefix)
}

/// The S3 backend of a moto server on loopback port `port`.
pub fn s3_at(port: u16, prefix: &str) -> Backend {
    let endpoint = format!("http://127.0.0.1:{port}");
    Backend::from_url_with(
        &format!("s3://redoubt-test/{prefix}"),
        [
            ("aws_endpoint", endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
            ("aws_region", "us-east-1"),
            ("aws_virtual_hosted_style_request", "false"),
        ],
    )
    .unwrap()
}

/// Azurite's Blob service on loopback, with container `redoubt` made.
pub fn azurite() -> Server {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--blobHost".into(),
        "127.0.0.1".into(),
        "--blobPort".into(),
        port.to_string(),
        "--location".into(),
        dir.path().display().to_string(),
        "--silent".into(),
        "--skipApiVersionCheck".into(),
    ];
    let server = start("azurite-blob", &args, port, dir);
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    );
    let made = Command::new("python3")
        .args([
            "-c",
            "import sys; from azure.storage.blob import BlobServiceClient; \
             BlobServiceClient.from_connection_string(sys.argv[1]).create_container('redoubt')",
            &connection,
        ])
        .status()
        .unwrap_or_else(|e| panic!("cannot run python3 to make the container: {e}"));
    assert!(
        made.success(),
        "azure-storage-blob made the container (see .ci/run)"
    );
    server
}

pub fn azure_backend(server: &Server, prefix: &str) -> Backend {
    azure_at(server.port, prefix)
}

/// The Azure backend of an Azurite server on loopback port `port`.
pub fn azure_at(port: u16, prefix: &str) -> Backend {
    let endpoint = format!("http://127.0.0.1:{port}/devstoreaccount1");
    Backend::from_url_with(
        &format!("az://redoubt/{prefix}"),
        [
            ("azure_storage_account_name", "devstoreaccount1"),
            ("azure_storage_account_key", AZURITE_KEY),
            ("azure_storage_endpoint", endpoint.as_str()),
            ("azure_allow_http", "true"),
        ],
    )
    .unwrap()
}

/// A backend from a description that a child process can be handed in its environment:
/// `s3 PORT PREFIX` (moto), `az PORT PREFIX` (Azurite), or a folder URL.
pub fn backend_at(at: &str) -> Backend {
    match at.split(' ').collect::<Vec<_>>()[..] {
        ["s3", port, prefix] => s3_at(port.parse().unwrap(), prefix),
        ["az", port, prefix] => azure_at(port.parse().unwrap(), prefix),
        [url] => Backend::from_url(url).unwrap(),
        _ => panic!("no backend described by {at:?}"),
    }
}
