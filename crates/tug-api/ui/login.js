// Turns the token into the dashboard's cookie, then goes to the dashboard.
const form = document.getElementById('login');
const error = document.getElementById('error');
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  error.textContent = '';
  const token = document.getElementById('token').value;
  try {
    const r = await fetch('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-tug-csrf': '1' },
      body: JSON.stringify({ token }),
      credentials: 'same-origin',
    });
    if (r.ok) {
      location.assign('/');
      return;
    }
    const b = await r.json().catch(() => ({ error: r.statusText }));
    error.textContent = `Error: ${b.error}`;
  } catch (err) {
    error.textContent = `Error: ${err.message}`;
  }
});
