import './base.css';
import './context.css';
import './indexstatus.css';
