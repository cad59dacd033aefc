//! The Event Log: "Nexero" is registered as an Application source at install, and the service
//! forwards warnings, errors and lifecycle messages to it (the files keep everything).
//!
//! The Event Log and registry calls go straight to the Win32 API (windows-sys); each unsafe block
//! only passes NUL-terminated UTF-16 strings and handles it owns.
#![allow(unsafe_code)]

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::windows::ffi::OsStrExt;

use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;
use windows_sys::Win32::System::EventLog as el;
use windows_sys::Win32::System::Registry as reg;

use super::LIFECYCLE;
use crate::service::{ServiceError, SERVICE_NAME};

const EVENT_SOURCE_KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application\Nexero";
/// .NET Framework 4's message file maps every event id to "%1", so Event Viewer shows our text
/// as is; it ships with every Windows 10/11 and Server 2016+.
const EVENT_MESSAGE_FILE: &str = r"%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll";

/// Forwards warnings, errors and lifecycle messages to the Event Log.
pub(super) struct EventLogLayer;

impl<S: tracing::Subscriber> Layer<S> for EventLogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let kind = match *meta.level() {
            tracing::Level::ERROR => el::EVENTLOG_ERROR_TYPE,
            tracing::Level::WARN => el::EVENTLOG_WARNING_TYPE,
            _ if meta.target() == LIFECYCLE => el::EVENTLOG_INFORMATION_TYPE,
            _ => return,
        };
        let mut text = String::new();
        event.record(&mut MessageText(&mut text));
        report_event(kind, &text);
    }
}

struct MessageText<'a>(&'a mut String);

impl tracing::field::Visit for MessageText<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(std::iter::once(0)).collect()
}

/// Writes one entry to the Application log under our source; failures are ignored because the
/// Event Log is the last place left to report them.
pub(super) fn report_event(kind: el::REPORT_EVENT_TYPE, text: &str) {
    let source = wide(SERVICE_NAME);
    let message = wide(text);
    let strings = [message.as_ptr()];
    // SAFETY: both strings are NUL-terminated and outlive the calls; the handle is closed here.
    unsafe {
        let log = el::RegisterEventSourceW(std::ptr::null(), source.as_ptr());
        if log.is_null() {
            return;
        }
        el::ReportEventW(log, kind, 0, kind.into(), std::ptr::null_mut(), 1, 0, strings.as_ptr(), std::ptr::null());
        el::DeregisterEventSource(log);
    }
}

/// Registers "Nexero" as an Application Event Log source, so entries are shown as written.
pub(super) fn register_source() -> Result<(), ServiceError> {
    let key_path = wide(EVENT_SOURCE_KEY);
    let mut key: reg::HKEY = std::ptr::null_mut();
    // SAFETY: all strings are NUL-terminated; `key` is only used after a successful create and
    // is closed before returning.
    let status = unsafe {
        reg::RegCreateKeyExW(
            reg::HKEY_LOCAL_MACHINE,
            key_path.as_ptr(),
            0,
            std::ptr::null(),
            reg::REG_OPTION_NON_VOLATILE,
            reg::KEY_WRITE,
            std::ptr::null(),
            &mut key,
            std::ptr::null_mut(),
        )
    };
    if status != 0 {
        return Err(ServiceError(format!(
            "cannot register the Event Log source (Windows error {status}). Fix: run as administrator"
        )));
    }
    let message_file: Vec<u8> = wide(EVENT_MESSAGE_FILE).iter().flat_map(|c| c.to_le_bytes()).collect();
    let types: u32 = (el::EVENTLOG_ERROR_TYPE | el::EVENTLOG_WARNING_TYPE | el::EVENTLOG_INFORMATION_TYPE).into();
    let (name_file, name_types) = (wide("EventMessageFile"), wide("TypesSupported"));
    // SAFETY: as above; the data pointers and lengths describe live buffers.
    let status = unsafe {
        let a = reg::RegSetValueExW(key, name_file.as_ptr(), 0, reg::REG_EXPAND_SZ, message_file.as_ptr(), message_file.len() as u32);
        let b = reg::RegSetValueExW(key, name_types.as_ptr(), 0, reg::REG_DWORD, types.to_le_bytes().as_ptr(), 4);
        reg::RegCloseKey(key);
        if a != 0 { a } else { b }
    };
    if status != 0 {
        return Err(ServiceError(format!("cannot register the Event Log source (Windows error {status})")));
    }
    Ok(())
}

pub(super) fn deregister_source() {
    let key_path = wide(EVENT_SOURCE_KEY);
    // SAFETY: NUL-terminated path; a missing key is fine.
    unsafe {
        reg::RegDeleteTreeW(reg::HKEY_LOCAL_MACHINE, key_path.as_ptr());
    }
}
