//! Bulk row inserts into SQLite without the GIL, through the SQLite library Python already loaded.
//!
//! The ledger writes a row per request. Through Python's `sqlite3`, binding a row's 36 values costs
//! more than SQLite's own work (each None or bool goes through the adapter protocol), and all of it
//! holds the GIL. Here a batch is copied out of its Python tuples under the GIL (about 0.5 µs a row)
//! and inserted with the GIL released.
//!
//! Why `dlopen(RTLD_NOLOAD)` and not a SQLite of our own: two copies of SQLite in one process do
//! not see each other's POSIX locks on the same file (a process never conflicts with itself), so
//! their connections could write at once and corrupt the database. Attaching only to the copy that
//! is already mapped (`libsqlite3.so` that Python's `_sqlite3` links) keeps one copy; where Python
//! has SQLite linked in statically there is nothing to attach to, and gatecore uses `sqlite3`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Mutex;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple};

const SQLITE_OK: c_int = 0;
const SQLITE_DONE: c_int = 101;
const SQLITE_OPEN_READWRITE: c_int = 0x2;
const SQLITE_OPEN_NOMUTEX: c_int = 0x8000;
/// SQLITE_STATIC: the text stays valid until the statement is reset (our buffer outlives the step).
const SQLITE_STATIC: isize = 0;

type Db = c_void;
type Stmt = c_void;

/// The C functions used, from the loaded library.
struct Api {
    open_v2: unsafe extern "C" fn(*const c_char, *mut *mut Db, c_int, *const c_char) -> c_int,
    close_v2: unsafe extern "C" fn(*mut Db) -> c_int,
    busy_timeout: unsafe extern "C" fn(*mut Db, c_int) -> c_int,
    exec: unsafe extern "C" fn(
        *mut Db,
        *const c_char,
        *const c_void,
        *mut c_void,
        *mut *mut c_char,
    ) -> c_int,
    prepare_v2: unsafe extern "C" fn(
        *mut Db,
        *const c_char,
        c_int,
        *mut *mut Stmt,
        *mut *const c_char,
    ) -> c_int,
    bind_null: unsafe extern "C" fn(*mut Stmt, c_int) -> c_int,
    bind_int64: unsafe extern "C" fn(*mut Stmt, c_int, i64) -> c_int,
    bind_double: unsafe extern "C" fn(*mut Stmt, c_int, f64) -> c_int,
    bind_text: unsafe extern "C" fn(*mut Stmt, c_int, *const c_char, c_int, isize) -> c_int,
    step: unsafe extern "C" fn(*mut Stmt) -> c_int,
    reset: unsafe extern "C" fn(*mut Stmt) -> c_int,
    finalize: unsafe extern "C" fn(*mut Stmt) -> c_int,
    errmsg: unsafe extern "C" fn(*mut Db) -> *const c_char,
}

impl Api {
    /// The functions of the SQLite at `path`, which must already be loaded in this process.
    fn attach(path: &str) -> Result<Api, String> {
        let c_path = CString::new(path).map_err(|_| "a NUL in the library path".to_string())?;
        // SAFETY: dlopen with RTLD_NOLOAD only returns a handle to a library already mapped; the
        // handle is never closed, so the symbols stay valid for the process's life.
        let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
        if handle.is_null() {
            return Err(format!("{path} is not loaded in this process"));
        }
        macro_rules! symbol {
            ($name:literal) => {{
                let name = concat!($name, "\0");
                // SAFETY: the name is NUL-terminated; a null result is checked before the transmute,
                // and each type above is the C signature SQLite documents for that function.
                let found = unsafe { libc::dlsym(handle, name.as_ptr().cast()) };
                if found.is_null() {
                    return Err(format!("{} is missing from {path}", $name));
                }
                unsafe { function(found) }
            }};
        }
        Ok(Api {
            open_v2: symbol!("sqlite3_open_v2"),
            close_v2: symbol!("sqlite3_close_v2"),
            busy_timeout: symbol!("sqlite3_busy_timeout"),
            exec: symbol!("sqlite3_exec"),
            prepare_v2: symbol!("sqlite3_prepare_v2"),
            bind_null: symbol!("sqlite3_bind_null"),
            bind_int64: symbol!("sqlite3_bind_int64"),
            bind_double: symbol!("sqlite3_bind_double"),
            bind_text: symbol!("sqlite3_bind_text"),
            step: symbol!("sqlite3_step"),
            reset: symbol!("sqlite3_reset"),
            finalize: symbol!("sqlite3_finalize"),
            errmsg: symbol!("sqlite3_errmsg"),
        })
    }
}

/// A symbol's address as the function pointer type `F` (the field it is assigned to).
///
/// # Safety
/// `F` must be an `unsafe extern "C" fn` type matching the symbol's C signature.
unsafe fn function<F: Copy>(address: *mut c_void) -> F {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: same size (checked); the caller vouches for the signature.
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) }
}

/// One value of a row; text is a range of the batch's byte buffer.
#[derive(Clone, Copy)]
enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(usize, usize),
}

/// A batch copied out of Python: `width` values per row.
struct Batch {
    width: usize,
    values: Vec<Value>,
    text: Vec<u8>,
}

impl Batch {
    fn from_rows(rows: &Bound<'_, PyList>, width: usize) -> PyResult<Batch> {
        let mut batch = Batch {
            width,
            values: Vec::with_capacity(rows.len() * width),
            text: Vec::new(),
        };
        for row in rows.iter() {
            let row = row.cast_into::<PyTuple>()?;
            if row.len() != width {
                return Err(PyValueError::new_err(format!(
                    "a row has {} values, not {width}",
                    row.len()
                )));
            }
            for value in row.iter() {
                let value = batch.value(&value)?;
                batch.values.push(value);
            }
        }
        Ok(batch)
    }

    fn value(&mut self, value: &Bound<'_, PyAny>) -> PyResult<Value> {
        if value.is_none() {
            Ok(Value::Null)
        } else if let Ok(text) = value.cast::<PyString>() {
            let bytes = text.to_str()?.as_bytes();
            let start = self.text.len();
            self.text.extend_from_slice(bytes);
            Ok(Value::Text(start, bytes.len()))
        } else if let Ok(flag) = value.cast::<PyBool>() {
            Ok(Value::Int(i64::from(flag.is_true())))
        } else if value.is_instance_of::<PyInt>() {
            Ok(Value::Int(value.extract()?))
        } else if let Ok(number) = value.cast::<PyFloat>() {
            Ok(Value::Real(number.value()))
        } else {
            Err(PyValueError::new_err(format!(
                "cannot store a {} in SQLite",
                value.get_type().name()?
            )))
        }
    }
}

/// The open connection and its two prepared INSERTs (one row; `chunk_rows` rows).
struct Connection {
    api: Api,
    db: *mut Db,
    one: *mut Stmt,
    chunk: *mut Stmt,
    chunk_rows: usize,
}

// SAFETY: the connection is opened NOMUTEX and only ever used under the writer's Mutex, one thread
// at a time, which SQLite allows for a connection.
unsafe impl Send for Connection {}

impl Connection {
    fn error(&self) -> String {
        // SAFETY: errmsg returns a NUL-terminated string owned by the connection.
        unsafe { CStr::from_ptr((self.api.errmsg)(self.db)) }
            .to_string_lossy()
            .into_owned()
    }

    fn exec(&self, sql: &CStr) -> Result<(), String> {
        // SAFETY: a valid connection and a NUL-terminated statement, no callback.
        let code = unsafe {
            (self.api.exec)(
                self.db,
                sql.as_ptr(),
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if code == SQLITE_OK {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn prepare(&self, sql: &str) -> Result<*mut Stmt, String> {
        let c_sql = CString::new(sql).map_err(|_| "a NUL in the statement".to_string())?;
        let mut stmt: *mut Stmt = std::ptr::null_mut();
        // SAFETY: valid connection and statement text; the out pointer is ours.
        let code = unsafe {
            (self.api.prepare_v2)(self.db, c_sql.as_ptr(), -1, &mut stmt, std::ptr::null_mut())
        };
        if code == SQLITE_OK && !stmt.is_null() {
            Ok(stmt)
        } else {
            Err(self.error())
        }
    }

    /// Bind `values` to `stmt` from parameter 1 on, run it once and reset it.
    fn run(&self, stmt: *mut Stmt, values: &[Value], text: &[u8]) -> Result<(), String> {
        for (i, value) in values.iter().enumerate() {
            let index = (i + 1) as c_int;
            // SAFETY: a prepared statement of this connection with at least `values.len()`
            // parameters; text ranges are inside `text`, which outlives the step (SQLITE_STATIC).
            let code = unsafe {
                match *value {
                    Value::Null => (self.api.bind_null)(stmt, index),
                    Value::Int(v) => (self.api.bind_int64)(stmt, index, v),
                    Value::Real(v) => (self.api.bind_double)(stmt, index, v),
                    Value::Text(start, len) => (self.api.bind_text)(
                        stmt,
                        index,
                        text[start..].as_ptr().cast(),
                        len as c_int,
                        SQLITE_STATIC,
                    ),
                }
            };
            if code != SQLITE_OK {
                return Err(self.error());
            }
        }
        // SAFETY: as above; the statement is reset whatever the step returned.
        let code = unsafe { (self.api.step)(stmt) };
        unsafe { (self.api.reset)(stmt) };
        if code == SQLITE_DONE {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// The whole batch in one transaction: chunks of `chunk_rows` rows, the rest one by one.
    fn insert(&self, batch: &Batch) -> Result<(), String> {
        self.exec(c"BEGIN IMMEDIATE")?;
        let result = (|| {
            let chunk = self.chunk_rows * batch.width;
            let whole = batch.values.len() - batch.values.len() % chunk;
            for values in batch.values[..whole].chunks_exact(chunk) {
                self.run(self.chunk, values, &batch.text)?;
            }
            for values in batch.values[whole..].chunks_exact(batch.width) {
                self.run(self.one, values, &batch.text)?;
            }
            self.exec(c"COMMIT")
        })();
        if result.is_err() {
            let _ = self.exec(c"ROLLBACK");
        }
        result
    }

    fn close(&mut self) {
        // SAFETY: finalize accepts null; the connection is closed once (db set to null after).
        unsafe {
            (self.api.finalize)(self.one);
            (self.api.finalize)(self.chunk);
            if !self.db.is_null() {
                (self.api.close_v2)(self.db);
            }
        }
        self.one = std::ptr::null_mut();
        self.chunk = std::ptr::null_mut();
        self.db = std::ptr::null_mut();
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}

#[pyclass(name = "SqliteRowWriter", module = "gatecore._core")]
pub struct PySqliteRowWriter {
    connection: Mutex<Connection>,
    /// Values per row, as the two INSERTs were prepared for.
    width: usize,
}

#[pymethods]
impl PySqliteRowWriter {
    /// A connection to the database at `path` through the SQLite at `library` (already loaded),
    /// with `insert_one` (one row of `width` `?` parameters) and `insert_chunk` (`chunk_rows` rows).
    #[new]
    fn new(
        library: &str,
        path: &str,
        insert_one: &str,
        insert_chunk: &str,
        chunk_rows: usize,
        width: usize,
    ) -> PyResult<Self> {
        let api = Api::attach(library).map_err(PyOSError::new_err)?;
        let c_path = CString::new(path).map_err(|_| PyValueError::new_err("a NUL in the path"))?;
        let mut db: *mut Db = std::ptr::null_mut();
        // SAFETY: NUL-terminated path, our out pointer; a failed open still returns a handle to close.
        let code = unsafe {
            (api.open_v2)(
                c_path.as_ptr(),
                &mut db,
                SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                std::ptr::null(),
            )
        };
        let mut connection = Connection {
            api,
            db,
            one: std::ptr::null_mut(),
            chunk: std::ptr::null_mut(),
            chunk_rows,
        };
        if code != SQLITE_OK || db.is_null() {
            return Err(PyOSError::new_err(format!(
                "cannot open {path}: {}",
                connection.error()
            )));
        }
        // SAFETY: a valid connection.
        unsafe { (connection.api.busy_timeout)(db, 10_000) };
        connection
            .exec(c"PRAGMA synchronous=NORMAL")
            .map_err(PyOSError::new_err)?;
        connection.one = connection.prepare(insert_one).map_err(PyOSError::new_err)?;
        connection.chunk = connection
            .prepare(insert_chunk)
            .map_err(PyOSError::new_err)?;
        Ok(PySqliteRowWriter {
            connection: Mutex::new(connection),
            width,
        })
    }

    /// Insert `rows` (tuples of None, bool, int, float or str) in one transaction, without the GIL;
    /// all or none of them (OSError with SQLite's message when it fails).
    fn insert(&self, py: Python<'_>, rows: &Bound<'_, PyList>) -> PyResult<()> {
        let batch = Batch::from_rows(rows, self.width)?;
        py.detach(|| {
            let connection = self
                .connection
                .lock()
                .map_err(|_| "writer poisoned".to_string())?;
            if connection.db.is_null() {
                return Err("the writer is closed".to_string());
            }
            connection.insert(&batch)
        })
        .map_err(PyOSError::new_err)
    }

    /// Close the connection (later inserts fail).
    fn close(&self) {
        if let Ok(mut connection) = self.connection.lock() {
            connection.close();
        }
    }
}
