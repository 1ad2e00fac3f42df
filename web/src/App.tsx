import { TalkPage } from "./components/TalkPage";

/** The first page of the web app; the workflow editor comes later. */
export function App() {
  return (
    <main className="app">
      <header>
        <h1>Voxflow</h1>
        <nav>
          <a href="/docs">API docs</a>
        </nav>
      </header>
      <TalkPage />
    </main>
  );
}
