//! The few libvirt calls the `virt` crate does not wrap: block I/O tuning,
//! interface bandwidth, bulk domain statistics and the host's memory figures. Every `unsafe` block of the
//! backend lives here; each one states what keeps it sound. This is the one
//! module of the crate allowed `unsafe` (the crate root denies it).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::Error;
use virt::sys;

/// A typed-parameter value as libvirt reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    UInt(u64),
    Double(f64),
    Bool(bool),
    Text(String),
}

impl ParamValue {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::UInt(v) => Some(v),
            Self::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
}

/// One domain's record of a bulk statistics call.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRecord {
    pub domain: String,
    /// The domain's UUID, as QEMU's `-uuid` argument spells it.
    pub uuid: String,
    pub params: Vec<(String, ParamValue)>,
}

impl StatsRecord {
    pub fn get(&self, key: &str) -> Option<&ParamValue> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(ParamValue::as_u64)
    }

    pub fn text(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(ParamValue::Text(s)) => Some(s),
            _ => None,
        }
    }
}

/// A typed-parameter list built for a setter; freed on drop.
struct ParamList {
    ptr: sys::virTypedParameterPtr,
    len: c_int,
    cap: c_int,
}

impl ParamList {
    fn new() -> Self {
        Self { ptr: std::ptr::null_mut(), len: 0, cap: 0 }
    }

    fn add_u64(&mut self, name: &str, value: u64) -> Result<(), Error> {
        let name = CString::new(name)?;
        // SAFETY: ptr/len/cap are owned by this list and only grown by libvirt's
        // own allocator; `name` outlives the call (libvirt copies the field name).
        let rc = unsafe { sys::virTypedParamsAddULLong(&mut self.ptr, &mut self.len, &mut self.cap, name.as_ptr(), value) };
        if rc < 0 { Err(Error::last_error()) } else { Ok(()) }
    }

    fn add_u32(&mut self, name: &str, value: u32) -> Result<(), Error> {
        let name = CString::new(name)?;
        // SAFETY: as in add_u64.
        let rc = unsafe { sys::virTypedParamsAddUInt(&mut self.ptr, &mut self.len, &mut self.cap, name.as_ptr(), value) };
        if rc < 0 { Err(Error::last_error()) } else { Ok(()) }
    }
}

impl Drop for ParamList {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: the array was allocated by virTypedParamsAdd* and holds `len` entries.
            unsafe { sys::virTypedParamsFree(self.ptr, self.len) };
        }
    }
}

/// `virDomainSetBlockIoTune` with unsigned long long parameters
/// (e.g. `read_iops_sec`); `flags` are `VIR_DOMAIN_AFFECT_*`.
pub fn set_block_iotune(domain: &Domain, disk: &str, params: &[(&str, u64)], flags: u32) -> Result<(), Error> {
    let mut list = ParamList::new();
    for (name, value) in params {
        list.add_u64(name, *value)?;
    }
    let disk = CString::new(disk)?;
    // SAFETY: the domain pointer is valid for the borrow of `domain`; the list and
    // the disk string live until the call returns; libvirt does not keep them.
    let rc = unsafe { sys::virDomainSetBlockIoTune(domain.as_ptr(), disk.as_ptr(), list.ptr, list.len, flags) };
    if rc < 0 { Err(Error::last_error()) } else { Ok(()) }
}

/// `virDomainSetInterfaceParameters` with unsigned int parameters
/// (e.g. `inbound.average` in KiB/s).
pub fn set_interface_parameters(domain: &Domain, device: &str, params: &[(&str, u32)], flags: u32) -> Result<(), Error> {
    let mut list = ParamList::new();
    for (name, value) in params {
        list.add_u32(name, *value)?;
    }
    let device = CString::new(device)?;
    // SAFETY: as in set_block_iotune.
    let rc = unsafe { sys::virDomainSetInterfaceParameters(domain.as_ptr(), device.as_ptr(), list.ptr, list.len, flags) };
    if rc < 0 { Err(Error::last_error()) } else { Ok(()) }
}

/// Statistics of every domain in one call (`virConnectGetAllDomainStats`).
/// The host's memory figures in KiB (`total`, `free`, `buffers`, `cached`),
/// all NUMA cells together.
pub fn node_memory_stats(conn: &Connect) -> Result<Vec<(String, u64)>, Error> {
    let cell = sys::VIR_NODE_MEMORY_STATS_ALL_CELLS;
    let mut count: c_int = 0;
    // SAFETY: a null array with a zero count asks only for the count.
    let rc = unsafe { sys::virNodeGetMemoryStats(conn.as_ptr(), cell, std::ptr::null_mut(), &mut count, 0) };
    if rc < 0 {
        return Err(Error::last_error());
    }
    let empty = sys::virNodeMemoryStats { field: [0; 80], value: 0 };
    let mut stats = vec![empty; usize::try_from(count).unwrap_or(0)];
    // SAFETY: `stats` holds `count` entries, which libvirt fills at most; each
    // field is a NUL-terminated name within its 80 bytes.
    let rc = unsafe { sys::virNodeGetMemoryStats(conn.as_ptr(), cell, stats.as_mut_ptr(), &mut count, 0) };
    if rc < 0 {
        return Err(Error::last_error());
    }
    stats.truncate(usize::try_from(count).unwrap_or(0));
    // SAFETY: as above, libvirt NUL-terminates every field it wrote.
    Ok(stats.iter().map(|s| (unsafe { CStr::from_ptr(s.field.as_ptr()) }.to_string_lossy().into_owned(), s.value)).collect())
}

pub fn all_domain_stats(conn: &Connect, stats: u32, flags: u32) -> Result<Vec<StatsRecord>, Error> {
    let mut records: *mut sys::virDomainStatsRecordPtr = std::ptr::null_mut();
    // SAFETY: the connection pointer is valid for the borrow; on success libvirt
    // returns a NULL-terminated array we own and free in `take_records`.
    let n = unsafe { sys::virConnectGetAllDomainStats(conn.as_ptr(), stats, &mut records, flags) };
    if n < 0 {
        return Err(Error::last_error());
    }
    // SAFETY: `records` came from libvirt with `n` entries.
    Ok(unsafe { take_records(records, n) })
}

/// Statistics of the given domains in one call (`virDomainListGetStats`).
pub fn domain_list_stats(domains: &[Domain], stats: u32, flags: u32) -> Result<Vec<StatsRecord>, Error> {
    if domains.is_empty() {
        return Ok(Vec::new());
    }
    // SAFETY: the pointers stay valid while `domains` is borrowed; libvirt wants a
    // NULL-terminated array and does not keep it.
    let mut list: Vec<sys::virDomainPtr> = domains.iter().map(|d| unsafe { d.as_ptr() }).collect();
    list.push(std::ptr::null_mut());
    let mut records: *mut sys::virDomainStatsRecordPtr = std::ptr::null_mut();
    // SAFETY: as above; the result array is ours to free.
    let n = unsafe { sys::virDomainListGetStats(list.as_mut_ptr(), stats, &mut records, flags) };
    if n < 0 {
        return Err(Error::last_error());
    }
    // SAFETY: `records` came from libvirt with `n` entries.
    Ok(unsafe { take_records(records, n) })
}

/// Copies a record array into owned values and frees it.
///
/// # Safety
/// `records` must be an array returned by a libvirt stats call with `n` entries.
unsafe fn take_records(records: *mut sys::virDomainStatsRecordPtr, n: c_int) -> Vec<StatsRecord> {
    if records.is_null() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for i in 0..n.max(0) as usize {
        let record = *records.add(i);
        if record.is_null() {
            break;
        }
        let name_ptr = sys::virDomainGetName((*record).dom);
        let domain = if name_ptr.is_null() { String::new() } else { CStr::from_ptr(name_ptr).to_string_lossy().into_owned() };
        let mut uuid = [0 as std::os::raw::c_char; sys::VIR_UUID_STRING_BUFLEN as usize];
        let uuid = if sys::virDomainGetUUIDString((*record).dom, uuid.as_mut_ptr()) == 0 {
            CStr::from_ptr(uuid.as_ptr()).to_string_lossy().into_owned()
        } else {
            String::new()
        };
        let params = (0..(*record).nparams.max(0) as usize).map(|j| read_param(&*(*record).params.add(j))).collect();
        out.push(StatsRecord { domain, uuid, params });
    }
    sys::virDomainStatsRecordListFree(records);
    out
}

/// # Safety
/// `p` must be a parameter filled in by libvirt (NUL-terminated field, string
/// values valid while the record list is alive).
unsafe fn read_param(p: &sys::virTypedParameter) -> (String, ParamValue) {
    let name = CStr::from_ptr(p.field.as_ptr()).to_string_lossy().into_owned();
    let value = match p.type_ as u32 {
        sys::VIR_TYPED_PARAM_INT => ParamValue::Int(i64::from(p.value.i)),
        sys::VIR_TYPED_PARAM_UINT => ParamValue::UInt(u64::from(p.value.ui)),
        sys::VIR_TYPED_PARAM_LLONG => ParamValue::Int(p.value.l),
        sys::VIR_TYPED_PARAM_ULLONG => ParamValue::UInt(p.value.ul),
        sys::VIR_TYPED_PARAM_DOUBLE => ParamValue::Double(p.value.d),
        sys::VIR_TYPED_PARAM_BOOLEAN => ParamValue::Bool(p.value.b != 0),
        sys::VIR_TYPED_PARAM_STRING if !p.value.s.is_null() => {
            ParamValue::Text(CStr::from_ptr(p.value.s).to_string_lossy().into_owned())
        }
        _ => ParamValue::Text(String::new()),
    };
    (name, value)
}
